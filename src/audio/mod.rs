//! Speech and transcription as a service (no MCP types): every argument checked against
//! the catalog before anything is sent (text length, format, speed, voice; audio size,
//! duration and format), the call made with the inference key, and its cost worked out
//! from the catalog's price.

pub mod format;
pub mod wav;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;

pub use format::AudioFormat;

use crate::keys::{InferenceKeys, KeyError};
use crate::kind_call;
use crate::local_file::{self, LocalFileError};
use crate::spend::{CallSpend, Quote, SpendError, Used};
use crate::vultr::audio::{AudioUpload, SpeechRequest, TranscriptionOptions, Voice};
use crate::vultr::error::{Api, VultrError, snippet};
use crate::vultr::inference::InferenceClient;
use crate::vultr::models::Model;

/// How long a model's voices are kept before `GET /audio/voices` is asked again.
const VOICES_TTL: Duration = Duration::from_secs(300);
/// Speaking rate assumed to estimate a duration from text (about 150 words a minute).
const CHARACTERS_PER_SECOND: f64 = 15.0;
/// The most audio sent for one transcription when the catalog states no byte limit for the
/// model (25 MiB, OpenAI's limit for the same endpoint): `data` is measured against it
/// before it is decoded and a `path` before it is read, so neither can exhaust memory.
pub const MAX_AUDIO_BYTES_UNSTATED: u64 = 25 * 1024 * 1024;
/// The most characters of an unexpected speech body quoted back in an error.
const SNIPPET_CHARS: usize = 100;

/// Why an audio call could not run; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Nothing to say.
    #[error("invalid arguments: `text` is empty; give the text to speak")]
    EmptyText,
    /// The call was not allowed to spend.
    #[error(transparent)]
    Spend(#[from] SpendError),
    /// The text is over the model's limit.
    #[error(
        "invalid arguments: `text` has {chars} characters and {model} takes at most {max}; split it into parts of at most {max} characters and call speak for each"
    )]
    TextTooLong {
        /// Its length in characters.
        chars: usize,
        /// The catalog's limit.
        max: usize,
        /// The model.
        model: String,
    },
    /// A format the model or this server does not return.
    #[error("invalid arguments: `format` {asked:?} is not offered by {model}; use one of {}", .allowed.join(", "))]
    Format {
        /// What was asked.
        asked: String,
        /// The model.
        model: String,
        /// What may be asked.
        allowed: Vec<String>,
    },
    /// A speed outside the catalog's range.
    #[error("invalid arguments: `speed` {asked} is outside {model}'s range {min} to {max}")]
    Speed {
        /// What was asked.
        asked: f64,
        /// The model.
        model: String,
        /// The least speed.
        min: f64,
        /// The greatest speed.
        max: f64,
    },
    /// A voice the model does not have.
    #[error("invalid arguments: `voice` {voice:?} is not a voice of {model}; its voices are {} (list_voices describes them)", .voices.join(", "))]
    UnknownVoice {
        /// What was asked.
        voice: String,
        /// The model.
        model: String,
        /// Its voices.
        voices: Vec<String>,
    },
    /// No audio, or more than one source of it.
    #[error(
        "invalid arguments: give the audio as exactly one of `data` (base64, with `filename`), `uri` (vultr://media/{{id}} from speak) or `path` (a local file, over stdio only)"
    )]
    Source,
    /// `data` without the name that tells its format.
    #[error(
        "invalid arguments: `data` needs a `filename` whose extension tells the format (e.g. speech.wav); known extensions: {}",
        format::known_extensions()
    )]
    NoFilename,
    /// `data` is not base64.
    #[error(
        "invalid arguments: `data` is not valid base64 ({0}); send the file's bytes base64-encoded"
    )]
    Base64(String),
    /// A name whose extension says no audio format.
    #[error(
        "invalid arguments: the file name {name:?} has no audio extension the engine recognises; use one of {}",
        format::known_extensions()
    )]
    Extension {
        /// The name given.
        name: String,
    },
    /// A format the model does not accept.
    #[error("{model} does not accept {mime} audio; it accepts {}. Convert the audio first", .accepted.join(", "))]
    NotAccepted {
        /// The audio's MIME type.
        mime: String,
        /// The model.
        model: String,
        /// What it accepts.
        accepted: Vec<String>,
    },
    /// Audio over the model's size limit.
    #[error(
        "the audio is {bytes} bytes and {model} takes at most {max} bytes; send a shorter or more compressed file"
    )]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The catalog's limit.
        max: u64,
        /// The model.
        model: String,
    },
    /// Audio over this server's cap, for a model whose catalog entry states no size limit.
    #[error(
        "the audio is {bytes} bytes and this server sends at most {max} bytes (25 MiB) to {model}, whose catalog entry states no size limit; send a shorter or more compressed file"
    )]
    OverServerCap {
        /// Its size (at least).
        bytes: u64,
        /// [`MAX_AUDIO_BYTES_UNSTATED`].
        max: u64,
        /// The model.
        model: String,
    },
    /// Audio over the model's duration limit.
    #[error(
        "the audio lasts {seconds:.0} s and {model} takes at most {max:.0} s; cut it into shorter parts"
    )]
    TooLong {
        /// Its duration.
        seconds: f64,
        /// The catalog's limit.
        max: f64,
        /// The model.
        model: String,
    },
    /// A URL: this server never fetches what a caller names.
    #[error(
        "invalid arguments: `uri` is a web address; this server never fetches URLs. Download the audio yourself and send it as `data` + `filename`, or use a vultr://media/{{id}} uri from speak"
    )]
    Url,
    /// A uri that is not this server's media.
    #[error(
        "invalid arguments: `uri` must be vultr://media/{{id}} (from a speak result); got a {0} uri"
    )]
    Uri(String),
    /// Media that the caller does not have (never made, expired, or another's).
    #[error(
        "no media {0} is stored for you: it may have expired (media are kept for a while only); speak again to make it"
    )]
    MediaNotFound(String),
    /// A local file asked for over HTTP.
    #[error(
        "invalid arguments: `{0}` works over stdio only (a local file of the user running the server); over HTTP send the audio as `data` + `filename`"
    )]
    LocalFilesOnly(&'static str),
    /// The local file could not be read.
    #[error("could not read the file given as `path`: {0}")]
    Read(String),
    /// The local file could not be written.
    #[error("could not write the file given as `save_to`: {0}")]
    Write(String),
    /// No inference key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Vultr refused or failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
}

/// What a call cost: USD when the catalog prices it, with how it was reckoned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// USD, absent when not priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    /// How it was reckoned, or why it is not priced.
    pub basis: String,
}

impl Cost {
    fn not_priced(why: &str) -> Cost {
        Cost {
            usd: None,
            basis: format!("not priced: {why}"),
        }
    }

    fn per(unit: &str, usd_per_unit: f64, units: f64, estimated: bool) -> Cost {
        let how = if estimated { "estimated: " } else { "" };
        Cost {
            usd: Some(usd_per_unit * units),
            basis: format!("{how}{units:.2} {unit}s at ${usd_per_unit} per {unit}"),
        }
    }
}

/// What to say and how.
#[derive(Debug, Clone, Default)]
pub struct SpeechInput {
    /// The text.
    pub text: String,
    /// A voice of the model.
    pub voice: Option<String>,
    /// `mp3`, `opus`, `flac` or `wav`; the catalog's default otherwise.
    pub format: Option<String>,
    /// Speaking rate.
    pub speed: Option<f64>,
    /// How to speak.
    pub instructions: Option<String>,
    /// The text's language.
    pub language: Option<String>,
}

/// Speech made.
#[derive(Debug, Clone)]
pub struct Speech {
    /// The audio.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: AudioFormat,
    /// The model that spoke.
    pub model: String,
    /// The voice asked for, if any.
    pub voice: Option<String>,
    /// Characters spoken.
    pub characters: usize,
    /// Seconds of audio, when known (WAV).
    pub duration_seconds: Option<f64>,
    /// What it cost.
    pub cost: Cost,
    /// Milliseconds Vultr took.
    pub latency_ms: u64,
}

/// Text heard.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// What was said.
    pub text: String,
    /// The model that listened.
    pub model: String,
    /// Bytes uploaded.
    pub bytes: usize,
    /// Seconds of audio, when known (WAV).
    pub duration_seconds: Option<f64>,
    /// What it cost.
    pub cost: Cost,
    /// Milliseconds Vultr took.
    pub latency_ms: u64,
}

/// A model's voices, as last read.
type VoiceCache = HashMap<String, (Instant, Arc<Vec<Voice>>)>;

/// Speech, voices and transcription on Vultr.
pub struct Audio {
    keys: Arc<InferenceKeys>,
    inference: InferenceClient,
    voices: Mutex<VoiceCache>,
}

impl Audio {
    /// The service, calling Vultr with `keys`.
    pub fn new(keys: Arc<InferenceKeys>, inference: InferenceClient) -> Self {
        Self {
            keys,
            inference,
            voices: Mutex::new(HashMap::new()),
        }
    }

    /// Speaks `input` with `model` (a speech model of the catalog), after checking it
    /// against the catalog and the model's voices.
    pub async fn speak(
        &self,
        model: &Model,
        input: SpeechInput,
        spend: &CallSpend,
    ) -> Result<Speech, AudioError> {
        let text = input.text;
        let characters = text.chars().count();
        if text.trim().is_empty() {
            return Err(AudioError::EmptyText);
        }
        let spec = &model.spec;
        if let Some(max) = spec.limit_in("character").map(|m| m as usize)
            && characters > max
        {
            return Err(AudioError::TextTooLong {
                chars: characters,
                max,
                model: model.id.clone(),
            });
        }
        let format = choose_format(model, input.format.as_deref())?;
        if let Some(speed) = input.speed {
            check_speed(model, speed)?;
        }
        if let Some(voice) = input.voice.as_deref() {
            self.check_voice(model, voice).await?;
        }
        let request = SpeechRequest {
            model: model.id.clone(),
            input: text,
            response_format: format.name().to_owned(),
            voice: input.voice.clone(),
            speed: input.speed,
            instructions: input.instructions.filter(|s| !s.trim().is_empty()),
            language: input.language.filter(|s| !s.trim().is_empty()),
        };
        let mut hold = spend
            .hold(speech_quote(model, characters, input.speed))
            .await?;
        let started = Instant::now();
        let request = &request;
        let audio = kind_call::with_key_held::<_, AudioError, _, _>(
            &self.keys,
            &mut hold,
            |key| async move { self.inference.speech(&key, request).await },
        )
        .await?;
        let latency_ms = elapsed_ms(started);
        // Vultr made (and charges for) the speech, whatever is found wrong with it below.
        let duration_seconds = match format {
            AudioFormat::Wav => wav::duration_seconds(&audio.body),
            _ => None,
        };
        let cost = speech_cost(model, characters, duration_seconds, input.speed);
        hold.settle(Used {
            usd: cost.usd,
            ..Used::default()
        })
        .await;
        check_magic(format, &audio.body)?;
        Ok(Speech {
            bytes: audio.body,
            format,
            model: model.id.clone(),
            voice: input.voice,
            characters,
            duration_seconds,
            cost,
            latency_ms,
        })
    }

    /// The voices of the speech model `model`, as `GET /audio/voices` gives them (kept a
    /// few minutes).
    pub async fn voices(&self, model: &str) -> Result<Arc<Vec<Voice>>, AudioError> {
        if let Some((read, voices)) = self.cache().get(model)
            && read.elapsed() < VOICES_TTL
        {
            return Ok(voices.clone());
        }
        let voices = Arc::new(
            kind_call::with_key::<_, AudioError, _, _>(&self.keys, |key| async move {
                self.inference.voices(&key, model).await
            })
            .await?,
        );
        self.cache()
            .insert(model.to_owned(), (Instant::now(), voices.clone()));
        Ok(voices)
    }

    /// Refuses a voice `model` does not list. When the voices cannot be read, the
    /// catalog's list decides, and without one Vultr does.
    async fn check_voice(&self, model: &Model, voice: &str) -> Result<(), AudioError> {
        let known: Vec<String> = match self.voices(&model.id).await {
            Ok(voices) => voices.iter().map(|v| v.id.clone()).collect(),
            Err(error) => {
                tracing::warn!(%error, model = %model.id, "voices unavailable; checking the voice against the catalog");
                model
                    .spec
                    .parameter("voice")
                    .map(|p| p.values.clone())
                    .unwrap_or_default()
            }
        };
        if known.is_empty() || known.iter().any(|v| v == voice) {
            return Ok(());
        }
        Err(AudioError::UnknownVoice {
            voice: voice.to_owned(),
            model: model.id.clone(),
            voices: known,
        })
    }

    /// Transcribes `upload` with `model` (a transcription model of the catalog), after
    /// checking its format, size and (for WAV) duration against the catalog.
    pub async fn transcribe(
        &self,
        model: &Model,
        upload: AudioUpload,
        options: TranscriptionOptions,
        spend: &CallSpend,
    ) -> Result<Transcript, AudioError> {
        let spec = &model.spec;
        if !spec.input_formats.is_empty() {
            let mime = format::normalize_mime(&upload.mime);
            if !spec
                .input_formats
                .iter()
                .any(|f| format::normalize_mime(f) == mime)
            {
                return Err(AudioError::NotAccepted {
                    mime,
                    model: model.id.clone(),
                    accepted: spec.input_formats.clone(),
                });
            }
        }
        check_size(model, upload.bytes.len() as u64)?;
        let duration_seconds = wav::duration_seconds(&upload.bytes);
        if let (Some(seconds), Some(max)) = (duration_seconds, spec.limit_in("second"))
            && seconds > max
        {
            return Err(AudioError::TooLong {
                seconds,
                max,
                model: model.id.clone(),
            });
        }
        let options = TranscriptionOptions {
            language: options.language.filter(|s| !s.trim().is_empty()),
            prompt: options.prompt.filter(|s| !s.trim().is_empty()),
        };
        let mut hold = spend
            .hold(transcription_quote(model, duration_seconds))
            .await?;
        let started = Instant::now();
        let (upload, options) = (&upload, &options);
        let text = kind_call::with_key_held::<_, AudioError, _, _>(
            &self.keys,
            &mut hold,
            |key| async move {
                self.inference
                    .transcribe(&key, &model.id, upload, options)
                    .await
            },
        )
        .await?;
        let cost = match (spec.price_per("second"), duration_seconds) {
            (Some(price), Some(seconds)) => Cost::per("second", price.usd_per_unit, seconds, false),
            (Some(_), None) => Cost::not_priced("duration unknown (only a WAV's is read)"),
            (None, _) => Cost::not_priced("the catalog states no price per second"),
        };
        hold.settle(Used {
            usd: cost.usd,
            ..Used::default()
        })
        .await;
        Ok(Transcript {
            text,
            model: model.id.clone(),
            bytes: upload.bytes.len(),
            duration_seconds,
            cost,
            latency_ms: elapsed_ms(started),
        })
    }

    /// Audio sent as base64 `data`, named `filename` (whose extension gives its format),
    /// refused before it is decoded when it would be over `model`'s size cap.
    pub fn upload_from_data(
        model: &Model,
        data: &str,
        filename: Option<&str>,
    ) -> Result<AudioUpload, AudioError> {
        let filename = filename
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .ok_or(AudioError::NoFilename)?;
        let mime = format::mime_of_filename(filename).ok_or_else(|| AudioError::Extension {
            name: filename.to_owned(),
        })?;
        let data = data.trim();
        check_size(model, decoded_len(data))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| AudioError::Base64(e.to_string()))?;
        Ok(AudioUpload {
            bytes,
            filename: base_name(filename),
            mime: mime.to_owned(),
        })
    }

    /// The local file at `path`, when the caller may name local files (stdio only): a
    /// regular file outside /proc, /sys and /dev, read through one handle and never past
    /// `model`'s size cap.
    pub async fn upload_from_path(
        model: &Model,
        path: &str,
        local_files: bool,
    ) -> Result<AudioUpload, AudioError> {
        if !local_files {
            return Err(AudioError::LocalFilesOnly("path"));
        }
        let path = Path::new(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let mime = format::mime_of_filename(&name)
            .ok_or_else(|| AudioError::Extension { name: name.clone() })?;
        let bytes = local_file::read_capped(path, size_cap(model).0)
            .await
            .map_err(|e| match e {
                LocalFileError::TooLarge { bytes, .. } => too_large(model, bytes),
                other => AudioError::Read(other.to_string()),
            })?;
        Ok(AudioUpload {
            bytes,
            filename: name,
            mime: mime.to_owned(),
        })
    }

    /// Writes speech to the new local file `path`, when the caller may name local files
    /// (stdio only), readable by its owner alone; an existing file (or link) is refused
    /// and left as it was.
    pub async fn save(path: &str, bytes: &[u8], local_files: bool) -> Result<(), AudioError> {
        if !local_files {
            return Err(AudioError::LocalFilesOnly("save_to"));
        }
        local_file::create_private(Path::new(path), bytes.to_vec())
            .await
            .map_err(|e| AudioError::Write(e.to_string()))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VoiceCache> {
        self.voices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The id of a `vultr://media/{id}` uri; a web address or another scheme is refused.
pub fn media_id(uri: &str) -> Result<&str, AudioError> {
    let uri = uri.trim();
    if let Some(id) = crate::media::id_of(uri) {
        return Ok(id);
    }
    let scheme = uri
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "http" | "https" | "ftp" | "ftps" => Err(AudioError::Url),
        "" => Err(AudioError::Uri("scheme-less".to_owned())),
        other => Err(AudioError::Uri(format!("{other}:"))),
    }
}

/// Stored media as an upload: its name when that has an audio extension, else one made
/// from its MIME type.
pub fn upload_from_media(id: &str, mime: &str, name: Option<&str>, bytes: Vec<u8>) -> AudioUpload {
    let filename = match name.map(base_name) {
        Some(name) if format::mime_of_filename(&name).is_some() => name,
        _ => format!(
            "{}.{}",
            id.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
            format::extension_of_mime(mime).unwrap_or("wav")
        ),
    };
    AudioUpload {
        bytes,
        filename,
        mime: format::normalize_mime(mime),
    }
}

/// The format to ask for: `asked`, else the catalog's default, else mp3; each must be one
/// the catalog lists (when it lists any) and one this server returns.
fn choose_format(model: &Model, asked: Option<&str>) -> Result<AudioFormat, AudioError> {
    let listed = model
        .spec
        .parameter("response_format")
        .map(|p| p.values.clone())
        .unwrap_or_default();
    let allowed: Vec<AudioFormat> = AudioFormat::ALL
        .into_iter()
        .filter(|f| listed.is_empty() || listed.iter().any(|l| l.eq_ignore_ascii_case(f.name())))
        .collect();
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    let default = model
        .spec
        .parameter("response_format")
        .and_then(|p| p.default.as_ref())
        .and_then(|d| d.as_str())
        .unwrap_or("mp3");
    let wanted = asked.unwrap_or(default);
    match AudioFormat::parse(wanted).filter(|f| allowed.contains(f)) {
        Some(format) => Ok(format),
        None if asked.is_none() => allowed.first().copied().ok_or_else(|| AudioError::Format {
            asked: wanted.to_owned(),
            model: model.id.clone(),
            allowed: Vec::new(),
        }),
        None => Err(AudioError::Format {
            asked: wanted.to_owned(),
            model: model.id.clone(),
            allowed: allowed.iter().map(|f| f.name().to_owned()).collect(),
        }),
    }
}

fn check_speed(model: &Model, speed: f64) -> Result<(), AudioError> {
    let range = model.spec.parameter("speed");
    let min = range.and_then(|p| p.min).unwrap_or(0.0);
    let max = range.and_then(|p| p.max).unwrap_or(f64::INFINITY);
    if speed.is_finite() && speed > 0.0 && speed >= min && speed <= max {
        return Ok(());
    }
    Err(AudioError::Speed {
        asked: speed,
        model: model.id.clone(),
        min,
        max,
    })
}

/// The most bytes of audio `model` takes, and whether its catalog entry says so (else it
/// is [`MAX_AUDIO_BYTES_UNSTATED`]).
fn size_cap(model: &Model) -> (u64, bool) {
    match model.spec.limit_in("byte") {
        Some(max) => (max as u64, true),
        None => (MAX_AUDIO_BYTES_UNSTATED, false),
    }
}

fn check_size(model: &Model, bytes: u64) -> Result<(), AudioError> {
    if bytes > size_cap(model).0 {
        return Err(too_large(model, bytes));
    }
    Ok(())
}

/// `bytes` of audio are over `model`'s cap: the catalog's, or this server's.
fn too_large(model: &Model, bytes: u64) -> AudioError {
    let model_id = model.id.clone();
    match size_cap(model) {
        (max, true) => AudioError::TooLarge {
            bytes,
            max,
            model: model_id,
        },
        (max, false) => AudioError::OverServerCap {
            bytes,
            max,
            model: model_id,
        },
    }
}

/// The length base64 `data` decodes to (exact for valid padded or unpadded base64), worked
/// out without decoding it.
fn decoded_len(data: &str) -> u64 {
    let padding = data
        .bytes()
        .rev()
        .take_while(|b| *b == b'=')
        .take(2)
        .count();
    ((data.len() as u64).saturating_mul(3) / 4).saturating_sub(padding as u64)
}

/// Refuses speech whose first bytes are not those of `format` (a 200 carrying JSON or
/// text, say), quoting the start of what came instead.
fn check_magic(format: AudioFormat, body: &[u8]) -> Result<(), AudioError> {
    let fits = match format {
        AudioFormat::Wav => body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WAVE",
        AudioFormat::Mp3 => {
            body.starts_with(b"ID3")
                || (body.len() >= 2 && body[0] == 0xFF && body[1] & 0xE0 == 0xE0)
        }
        AudioFormat::Flac => body.starts_with(b"fLaC"),
        AudioFormat::Opus => body.starts_with(b"OggS"),
    };
    if fits {
        return Ok(());
    }
    let head = &body[..body.len().min(4 * SNIPPET_CHARS)];
    Err(AudioError::Upstream(VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: format!(
            "speech was asked for as {format} but the body is not {format} audio ({} bytes)",
            body.len()
        ),
        snippet: snippet(&String::from_utf8_lossy(head), SNIPPET_CHARS),
    }))
}

/// The cost of speech: per character when the catalog prices characters, else per second
/// of audio (read from a WAV, estimated from the text otherwise).
fn speech_cost(model: &Model, characters: usize, seconds: Option<f64>, speed: Option<f64>) -> Cost {
    let spec = &model.spec;
    if let Some(price) = spec.price_per("character") {
        return Cost::per("character", price.usd_per_unit, characters as f64, false);
    }
    let Some(price) = spec.price_per("second") else {
        return Cost::not_priced("the catalog states no price for this model");
    };
    match seconds {
        Some(seconds) => Cost::per("second", price.usd_per_unit, seconds, false),
        None => {
            let rate = CHARACTERS_PER_SECOND * speed.filter(|s| *s > 0.0).unwrap_or(1.0);
            Cost::per("second", price.usd_per_unit, characters as f64 / rate, true)
        }
    }
}

/// The most speech of `characters` can cost: exact when priced per character; per second,
/// the estimated duration doubled (speech rates vary).
fn speech_quote(model: &Model, characters: usize, speed: Option<f64>) -> Quote {
    if model.spec.price_per("character").is_some() {
        return kind_call::quote(model, "character", characters as f64);
    }
    let rate = CHARACTERS_PER_SECOND * speed.filter(|s| *s > 0.0).unwrap_or(1.0);
    kind_call::quote(model, "second", 2.0 * characters as f64 / rate)
}

/// The most a transcription can cost: its duration (a WAV's), else the model's longest
/// input, at the price per second.
fn transcription_quote(model: &Model, seconds: Option<f64>) -> Quote {
    match seconds.or_else(|| model.spec.limit_in("second")) {
        Some(seconds) => kind_call::quote(model, "second", seconds),
        None => Quote::unbounded(
            &model.id,
            "the audio's duration is read only from a WAV and the catalog states no longest input",
        ),
    }
}

/// The last part of a name that may be a path.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned()
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::vultr::models::parse_catalog;

    fn tts(pricing: serde_json::Value) -> Model {
        parse_catalog(&json!([{"id": "tts",
            "input_modalities": [{"type": "text",
                "supported_inputs": {"max_prompt_length": {"value": 10, "unit": "character"}},
                "pricing": pricing}],
            "output_modalities": [{"type": "speech", "supported_parameters": {
                "response_format": {"type": "enum", "values": ["mp3", "wav", "pcm"], "default": "mp3"},
                "speed": {"type": "range", "min": 0.25, "max": 4}}}]}]))
        .unwrap()
        .remove(0)
    }

    #[test]
    fn formats_are_the_catalogs_minus_pcm() {
        let model = tts(json!([]));
        assert_eq!(choose_format(&model, None).unwrap(), AudioFormat::Mp3);
        assert_eq!(
            choose_format(&model, Some("WAV")).unwrap(),
            AudioFormat::Wav
        );
        for refused in ["pcm", "flac", "aac"] {
            let error = choose_format(&model, Some(refused))
                .unwrap_err()
                .to_string();
            assert!(error.ends_with("use one of mp3, wav"), "{error}");
        }
    }

    #[test]
    fn speed_is_checked_against_the_catalog_range() {
        let model = tts(json!([]));
        assert!(check_speed(&model, 0.25).is_ok());
        assert!(check_speed(&model, 4.0).is_ok());
        for refused in [0.2, 4.5, f64::NAN, 0.0] {
            assert!(check_speed(&model, refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn speech_is_priced_per_character_or_per_second_or_said_not_to_be() {
        let by_char = tts(json!([{"type": "prompt", "unit": "character", "cost_usd": "0.5"}]));
        assert_eq!(speech_cost(&by_char, 4, None, None).usd, Some(2.0));
        let by_second = tts(json!([{"type": "prompt", "unit": "second", "cost_usd": "0.1"}]));
        let measured = speech_cost(&by_second, 4, Some(3.0), None);
        assert!((measured.usd.unwrap() - 0.3).abs() < 1e-9);
        assert!(!measured.basis.contains("estimated"), "{}", measured.basis);
        let estimated = speech_cost(&by_second, 30, None, Some(2.0));
        assert!(
            (estimated.usd.unwrap() - 0.1).abs() < 1e-9,
            "30 chars at 30/s"
        );
        assert!(
            estimated.basis.starts_with("estimated"),
            "{}",
            estimated.basis
        );
        let free = speech_cost(&tts(json!([])), 4, None, None);
        assert_eq!(free.usd, None);
        assert!(free.basis.starts_with("not priced"), "{}", free.basis);
    }

    #[test]
    fn only_this_servers_media_uris_are_taken_and_urls_never() {
        assert_eq!(media_id("vultr://media/abc-1").unwrap(), "abc-1");
        assert!(matches!(
            media_id("https://example.com/a.wav"),
            Err(AudioError::Url)
        ));
        assert!(matches!(media_id("HTTP://x"), Err(AudioError::Url)));
        assert!(matches!(
            media_id("file:///etc/passwd"),
            Err(AudioError::Uri(_))
        ));
        assert!(matches!(
            media_id("vultr://media/"),
            Err(AudioError::Uri(_))
        ));
    }

    #[test]
    fn uploads_take_their_format_from_the_name() {
        let model = tts(json!([]));
        let upload = Audio::upload_from_data(&model, "UklGRg==", Some("dir/talk.wav")).unwrap();
        assert_eq!(
            (
                upload.filename.as_str(),
                upload.mime.as_str(),
                upload.bytes.as_slice()
            ),
            ("talk.wav", "audio/wav", b"RIFF".as_slice())
        );
        assert!(matches!(
            Audio::upload_from_data(&model, "UklGRg==", None),
            Err(AudioError::NoFilename)
        ));
        assert!(matches!(
            Audio::upload_from_data(&model, "UklGRg==", Some("talk")),
            Err(AudioError::Extension { .. })
        ));
        assert!(matches!(
            Audio::upload_from_data(&model, "not base64!", Some("a.wav")),
            Err(AudioError::Base64(_))
        ));
        let media = upload_from_media("m-1", "audio/mpeg", Some("speech"), vec![1]);
        assert_eq!(media.filename, "m1.mp3");
        let named = upload_from_media("m-1", "audio/wav", Some("hello.wav"), vec![1]);
        assert_eq!(named.filename, "hello.wav");
    }

    #[test]
    fn the_decoded_length_of_base64_is_known_before_decoding() {
        for len in 0..40usize {
            let bytes = vec![7u8; len];
            let padded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
            assert_eq!(decoded_len(&padded), len as u64, "{padded}");
            assert_eq!(decoded_len(&unpadded), len as u64, "{unpadded}");
        }
    }

    #[test]
    fn without_a_catalog_limit_data_over_the_hard_cap_is_refused_before_decoding() {
        let model = tts(json!([]));
        assert_eq!(size_cap(&model), (MAX_AUDIO_BYTES_UNSTATED, false));
        // Not base64 at all: decoding it would fail with Base64, so TooLarge proves the
        // size was checked first.
        let mut data = "A".repeat((MAX_AUDIO_BYTES_UNSTATED as usize / 3) * 4 + 4);
        data.push('!');
        let error = Audio::upload_from_data(&model, &data, Some("a.wav")).unwrap_err();
        assert!(matches!(error, AudioError::OverServerCap { .. }), "{error}");
        assert!(
            error.to_string().contains("at most 26214400 bytes"),
            "{error}"
        );
        assert!(check_size(&model, MAX_AUDIO_BYTES_UNSTATED).is_ok());
        assert!(check_size(&model, MAX_AUDIO_BYTES_UNSTATED + 1).is_err());
    }

    #[test]
    fn speech_must_begin_as_its_format_does() {
        let wav = b"RIFF\x24\x00\x00\x00WAVEfmt ";
        assert!(check_magic(AudioFormat::Wav, wav).is_ok());
        assert!(check_magic(AudioFormat::Wav, b"RIFF\x24\x00\x00\x00AVI ").is_err());
        assert!(check_magic(AudioFormat::Mp3, b"ID3\x04").is_ok());
        assert!(check_magic(AudioFormat::Mp3, &[0xFF, 0xFB, 0x90]).is_ok());
        assert!(check_magic(AudioFormat::Mp3, &[0xFF, 0x1B]).is_err());
        assert!(check_magic(AudioFormat::Flac, b"fLaC\x00").is_ok());
        assert!(check_magic(AudioFormat::Opus, b"OggS\x00").is_ok());
        assert!(check_magic(AudioFormat::Opus, wav).is_err());
        assert!(check_magic(AudioFormat::Flac, b"").is_err());
        let json = format!("{{\"error\": \"{}\"}}", "x".repeat(500));
        let error = check_magic(AudioFormat::Mp3, json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("answered HTTP 200"), "{error}");
        assert!(error.contains("not mp3 audio"), "{error}");
        assert!(error.contains("{\\\"error\\\""), "{error}");
        assert!(error.len() < 400, "the body is quoted short: {error}");
    }
}
