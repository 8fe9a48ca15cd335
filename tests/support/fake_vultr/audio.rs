//! The audio routes of the fake inference API, as Vultr's own plugin code describes them
//! (vultr-surfaces.md §3.2, §4):
//!
//! - `POST /v1/audio/speech` `{model, input, response_format, voice?, speed?, ...}`: real
//!   bytes of the format asked. A WAV is valid (16-bit mono, 8 kHz) and lasts
//!   [`SECONDS_PER_CHARACTER`] per character of `input` (divided by `speed`); mp3, flac
//!   and opus are plausible bytes with the right magic. Each carries the text spoken in a
//!   marked chunk, so transcribing the fake's own audio gives the text back.
//! - `GET /v1/audio/voices?model=`: the plugin's fixture (`ryan`, `design`).
//! - `POST /v1/audio/transcriptions` (multipart `file`, `model`, `language?`, `prompt?`),
//!   parsed with `multer`: `{"text": ...}`, the text the audio carries, else a line saying
//!   how many bytes were heard. A file name without an audio extension is a 400, as the
//!   engine's is.
//!
//! Errors are `{"error":{"message","code","type"}}`; every request needs a key the fake knows.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{PRIORITY_NORMAL, Shared, bearer, inference_error, json_response, lock};

/// Path of text to speech.
pub const SPEECH_PATH: &str = "/v1/audio/speech";
/// Path of the voices of a speech model.
pub const VOICES_PATH: &str = "/v1/audio/voices";
/// Path of speech to text.
pub const TRANSCRIPTIONS_PATH: &str = "/v1/audio/transcriptions";
/// The catalog's speech model.
pub const SPEECH_MODEL: &str = "qwen3-tts-12hz-1.7b";
/// The catalog's transcription model.
pub const TRANSCRIPTION_MODEL: &str = "whisper-large-v3-turbo";
/// The voices the fake's speech model has (the catalog's enum lists more).
pub const VOICES: [&str; 2] = ["ryan", "design"];
/// Seconds of fake speech per character of text, at speed 1.
pub const SECONDS_PER_CHARACTER: f64 = 0.05;
/// Sample rate of the fake's WAV.
pub const WAV_SAMPLE_RATE: u32 = 8000;
/// The marker before the text a fake audio file carries (a RIFF chunk id in a WAV).
const TEXT_MARK: &[u8; 4] = b"vtxt";

/// One transcription request, as the fake parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionSeen {
    /// The `file` part's file name.
    pub filename: Option<String>,
    /// The `file` part's Content-Type.
    pub content_type: Option<String>,
    /// The file's size.
    pub bytes: usize,
    /// The `model` field.
    pub model: Option<String>,
    /// The `language` field.
    pub language: Option<String>,
    /// The `prompt` field.
    pub prompt: Option<String>,
}

/// Mounts the audio routes on `server`.
pub(super) async fn mount(server: &MockServer, state: &Shared) {
    let routes: [(&str, &str, Route); 3] = [
        ("POST", SPEECH_PATH, Route::Speech),
        ("GET", VOICES_PATH, Route::Voices),
        ("POST", TRANSCRIPTIONS_PATH, Route::Transcriptions),
    ];
    for (verb, route_path, route) in routes {
        Mock::given(method(verb))
            .and(path(route_path))
            .respond_with(AudioResponder {
                state: state.clone(),
                route,
            })
            .with_priority(PRIORITY_NORMAL)
            .named(format!("inference {route:?}"))
            .mount(server)
            .await;
    }
}

/// Which audio route a responder serves.
#[derive(Debug, Clone, Copy)]
enum Route {
    Speech,
    Voices,
    Transcriptions,
}

struct AudioResponder {
    state: Shared,
    route: Route,
}

impl Respond for AudioResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        {
            let state = lock(&self.state);
            let authorized = bearer(request).is_some_and(|key| {
                state.subscriptions.iter().any(|s| s.api_key == key)
                    || state.extra_inference_keys.iter().any(|k| k == key)
            });
            if !authorized {
                return inference_error(401, "Invalid API key", json!(401), "authentication_error");
            }
        }
        match self.route {
            Route::Speech => speech(request),
            Route::Voices => voices(request),
            Route::Transcriptions => transcription(request, &self.state),
        }
    }
}

fn bad_request(message: &str) -> ResponseTemplate {
    inference_error(400, message, json!(400), "invalid_request_error")
}

fn speech(request: &Request) -> ResponseTemplate {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return bad_request("Request body is not valid JSON");
    };
    let model = body["model"].as_str().unwrap_or_default();
    if model != SPEECH_MODEL {
        return inference_error(
            404,
            &format!("The model `{model}` does not exist"),
            json!("model_not_found"),
            "invalid_request_error",
        );
    }
    let Some(input) = body["input"].as_str().filter(|i| !i.is_empty()) else {
        return bad_request("`input` is required");
    };
    if let Some(voice) = body.get("voice").and_then(Value::as_str)
        && !VOICES.contains(&voice)
    {
        return bad_request(&format!("Unknown voice `{voice}`"));
    }
    let speed = body["speed"].as_f64().unwrap_or(1.0);
    let format = body["response_format"].as_str().unwrap_or("mp3");
    let (bytes, content_type) = match format {
        "wav" => (wav(input, speed), "audio/wav"),
        "mp3" => (
            tagged(
                b"ID3\x04\x00\x00\x00\x00\x00\x00",
                input,
                &[0xFF, 0xFB, 0x90, 0x64],
            ),
            "audio/mpeg",
        ),
        "flac" => (
            tagged(b"fLaC\x00\x00\x00\x22", input, &[0xFF, 0xF8]),
            "audio/flac",
        ),
        "opus" => (tagged(b"OggS\x00\x02", input, b"OpusHead"), "audio/ogg"),
        other => return bad_request(&format!("Unsupported response_format `{other}`")),
    };
    ResponseTemplate::new(200).set_body_raw(bytes, content_type)
}

/// A valid WAV (16-bit mono PCM at [`WAV_SAMPLE_RATE`]) lasting
/// [`SECONDS_PER_CHARACTER`] × characters / `speed`, with `text` in a `vtxt` chunk.
pub fn wav(text: &str, speed: f64) -> Vec<u8> {
    let seconds = text.chars().count() as f64 * SECONDS_PER_CHARACTER / speed;
    let samples = (seconds * f64::from(WAV_SAMPLE_RATE)).round() as usize;
    let mut chunk = text.as_bytes().to_vec();
    if chunk.len() % 2 == 1 {
        chunk.push(0);
    }
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + chunk.len() + 8 + data_len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((4 + 24 + 8 + chunk.len() + 8 + data_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&WAV_SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(WAV_SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(TEXT_MARK);
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    // A quiet 500 Hz square wave.
    for i in 0..samples {
        let level: i16 = if (i / 8) % 2 == 0 { 2000 } else { -2000 };
        out.extend_from_slice(&level.to_le_bytes());
    }
    out
}

/// `head`, the text behind [`TEXT_MARK`] and its length, then `tail` repeated: plausible
/// bytes of a compressed format.
fn tagged(head: &[u8], text: &str, tail: &[u8]) -> Vec<u8> {
    let mut out = head.to_vec();
    out.extend_from_slice(TEXT_MARK);
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for _ in 0..(16 + text.len() / 4) {
        out.extend_from_slice(tail);
    }
    out
}

/// The text a fake audio file carries, if any.
pub fn carried_text(bytes: &[u8]) -> Option<String> {
    let at = bytes.windows(4).position(|w| w == TEXT_MARK)?;
    let len_at = at + 4;
    let len = u32::from_le_bytes(bytes.get(len_at..len_at + 4)?.try_into().ok()?) as usize;
    let text = bytes.get(len_at + 4..len_at + 4 + len)?;
    String::from_utf8(text.to_vec()).ok()
}

fn voices(request: &Request) -> ResponseTemplate {
    let model = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "model")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| SPEECH_MODEL.to_owned());
    if model != SPEECH_MODEL {
        return inference_error(
            404,
            &format!("The model `{model}` has no voices"),
            json!("model_not_found"),
            "invalid_request_error",
        );
    }
    json_response(
        200,
        json!({"object": "list", "model": SPEECH_MODEL, "data": [
            {"id": "ryan", "name": "Ryan", "description": "Dynamic male voice.", "mode": "custom_voice", "native_language": "English"},
            {"id": "design", "name": "Voice design", "description": "A new voice.", "mode": "voice_design"}]}),
    )
}

/// The fields and the file of a multipart body.
struct Form {
    seen: TranscriptionSeen,
    file: Vec<u8>,
}

fn transcription(request: &Request, state: &Shared) -> ResponseTemplate {
    let Some(form) = parse_form(request) else {
        return bad_request("Expected a multipart/form-data body with a `file`");
    };
    lock(state).transcriptions.push(form.seen.clone());
    let seen = form.seen;
    if seen.model.as_deref() != Some(TRANSCRIPTION_MODEL) {
        return inference_error(
            404,
            &format!(
                "The model `{}` does not exist",
                seen.model.unwrap_or_default()
            ),
            json!("model_not_found"),
            "invalid_request_error",
        );
    }
    let known = [
        "wav", "mp3", "mpga", "mpeg", "flac", "ogg", "opus", "oga", "m4a", "webm",
    ];
    let extension = seen
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    if !extension.is_some_and(|ext| known.contains(&ext.as_str())) {
        return bad_request("Unrecognized file format: the file name needs an audio extension");
    }
    let text = carried_text(&form.file)
        .unwrap_or_else(|| format!("(fake transcription of {} bytes)", form.file.len()));
    json_response(200, json!({ "text": text }))
}

/// Parses the multipart body as Vultr would, with `multer`.
fn parse_form(request: &Request) -> Option<Form> {
    let content_type = request.headers.get("content-type")?.to_str().ok()?;
    let boundary = multer::parse_boundary(content_type).ok()?;
    let body = request.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut seen = TranscriptionSeen {
        filename: None,
        content_type: None,
        bytes: 0,
        model: None,
        language: None,
        prompt: None,
    };
    let mut file = None;
    while let Some(field) = ready(multipart.next_field()).ok()? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            seen.filename = field.file_name().map(str::to_owned);
            seen.content_type = field.content_type().map(|m| m.to_string());
            let bytes = ready(field.bytes()).ok()?.to_vec();
            seen.bytes = bytes.len();
            file = Some(bytes);
        } else {
            let text = ready(field.text()).ok()?;
            match name.as_str() {
                "model" => seen.model = Some(text),
                "language" => seen.language = Some(text),
                "prompt" => seen.prompt = Some(text),
                _ => {}
            }
        }
    }
    Some(Form { seen, file: file? })
}

/// The output of a future over a body already in memory, which never waits.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("parsing an in-memory multipart body never waits"),
    }
}
