//! The `audio` toolset: `speak` (text to speech, returned as MCP audio content and a
//! `vultr://media/{id}` link), `list_voices`, and `transcribe` (speech to text). The logic
//! is in the audio service (src/audio/); this file decodes and renders.

use std::fmt::Write as _;

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::progress::CallProgress;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::audio::{self, Audio, AudioError, Cost, Speech, SpeechInput, Transcript};
use crate::chat::{ProgressSink, ProgressUpdate};
use crate::media::{Kept, NewMedia};
use crate::models::ModelKind;
use crate::settings::Toolset;
use crate::vultr::audio::{TranscriptionOptions, Voice};

/// Arguments of `speak`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SpeakArgs {
    /// The text to speak (at most the model's limit, 6000 characters today).
    text: String,
    /// A speech model from list_models (capability speech); default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
    /// A voice id from list_voices; default: the model's own.
    #[serde(default)]
    voice: Option<String>,
    /// mp3, opus, flac or wav; default mp3.
    #[serde(default)]
    format: Option<String>,
    /// Speaking rate, 1 normal (the catalog gives the range, 0.25 to 4 today).
    #[serde(default)]
    speed: Option<f64>,
    /// How to speak: tone, emotion, style.
    #[serde(default)]
    instructions: Option<String>,
    /// The text's language, e.g. English.
    #[serde(default)]
    language: Option<String>,
    /// Also write the audio to this local file (stdio only; created readable by you alone).
    #[serde(default)]
    save_to: Option<String>,
}

/// Arguments of `list_voices`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListVoicesArgs {
    /// A speech model from list_models; default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
}

/// Arguments of `transcribe`: the audio as exactly one of `data` + `filename`, `uri` or `path`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct TranscribeArgs {
    /// The audio file, base64-encoded (with filename).
    #[serde(default)]
    data: Option<String>,
    /// The file's name; its extension tells the format (e.g. talk.wav).
    #[serde(default)]
    filename: Option<String>,
    /// vultr://media/{id} from a speak result (never a web URL).
    #[serde(default)]
    uri: Option<String>,
    /// A local audio file (stdio only).
    #[serde(default)]
    path: Option<String>,
    /// A transcription model from list_models; default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
    /// The spoken language (ISO-639-1, e.g. en), if known.
    #[serde(default)]
    language: Option<String>,
    /// Text to guide the transcription (names, spelling).
    #[serde(default)]
    prompt: Option<String>,
}

/// The `speak` entry.
pub(super) fn speak() -> ToolEntry {
    ToolEntry {
        name: "speak",
        toolset: Toolset::Audio,
        description: "Text to speech on a Vultr speech model. Returns the audio as MCP audio content (when small enough) and always a vultr://media/{id} resource link; `save_to` also writes a local file (stdio only). Checks the text length, format, speed and voice against the catalog first.".to_owned(),
        input_schema: input_schema::<SpeakArgs>,
        behaviour: Behaviour::UPSTREAM_ADD,
        guide: "- speak: text to speech (`text`, optional `voice` from list_voices, `format` mp3|opus|flac|wav). The audio comes inline and as a vultr://media/{id} link (read it with resources/read, or pass it to transcribe).\n".to_owned(),
        handler: |server, call| Box::pin(server.speak(call)),
    }
}

/// The `list_voices` entry.
pub(super) fn list_voices() -> ToolEntry {
    ToolEntry {
        name: "list_voices",
        toolset: Toolset::Audio,
        description: "The voices of a Vultr speech model (id, name, description, mode, native language), for speak's `voice`.".to_owned(),
        input_schema: input_schema::<ListVoicesArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- list_voices: the voices a speech model offers, for speak's `voice`.\n".to_owned(),
        handler: |server, call| Box::pin(server.list_voices(call)),
    }
}

/// The `transcribe` entry.
pub(super) fn transcribe() -> ToolEntry {
    ToolEntry {
        name: "transcribe",
        toolset: Toolset::Audio,
        description: "Speech to text on a Vultr transcription model. The audio is one of: `data` (base64) + `filename`, `uri` vultr://media/{id} (from speak), or `path` of a local file (stdio only). Never fetches web URLs. Size, duration and format are checked against the catalog before upload.".to_owned(),
        input_schema: input_schema::<TranscribeArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- transcribe: speech to text; give `data` + `filename`, a vultr://media/{id} `uri`, or (stdio) a local `path`.\n".to_owned(),
        handler: |server, call| Box::pin(server.transcribe(call)),
    }
}

/// The structured result of `speak`.
#[derive(Serialize)]
struct SpeakResult<'a> {
    model: &'a str,
    format: &'static str,
    mime_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice: Option<&'a str>,
    characters: usize,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    cost_basis: &'a str,
    latency_ms: u64,
    /// The media's resource uri, when it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<&'a str>,
    /// Whether the audio is in the result as audio content.
    inline: bool,
    /// The local file written, when save_to was given and it worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_to: Option<&'a str>,
}

/// The structured result of `list_voices`.
#[derive(Serialize)]
struct VoiceList<'a> {
    model: &'a str,
    voices: &'a [Voice],
}

/// The structured result of `transcribe`.
#[derive(Serialize)]
struct TranscribeResult<'a> {
    text: &'a str,
    model: &'a str,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    cost_basis: &'a str,
    latency_ms: u64,
}

impl VultrServer {
    async fn speak(&self, call: Call) -> CallToolResult {
        let Call {
            owner,
            arguments,
            cancel,
            local_files,
            progress,
            spend,
            ..
        } = call;
        let work = async {
            let args = decode::<SpeakArgs>(arguments)?;
            // Refused before anything is sent, not after the audio is paid for.
            if args.save_to.is_some() && !local_files {
                return Err(AudioError::LocalFilesOnly("save_to").into());
            }
            let model = self
                .app
                .models
                .pick(ModelKind::Speech, args.model.as_deref())
                .await?;
            let input = SpeechInput {
                text: args.text,
                voice: args.voice.filter(|v| !v.trim().is_empty()),
                format: args.format,
                speed: args.speed,
                instructions: args.instructions,
                language: args.language,
            };
            let characters = input.text.chars().count();
            notify(
                &progress,
                format!("speaking {characters} characters with {}", model.id),
            )
            .await;
            let speech = self.app.audio.speak(&model, input, &spend).await?;
            // The audio is paid for now: a store that fails or is full costs the link only.
            let kept = self
                .app
                .media
                .keep(
                    &owner,
                    NewMedia {
                        mime: speech.format.mime().to_owned(),
                        name: format!("speech.{}", speech.format.extension()),
                        bytes: speech.bytes.clone(),
                    },
                )
                .await
                .map_err(|error| {
                    let problem = self.app.known_keys.redact(&error.to_string());
                    tracing::warn!(error = %problem, "speech could not be kept");
                    problem
                });
            let saved = match args.save_to.as_deref() {
                Some(path) => Some(
                    Audio::save(path, &speech.bytes, local_files)
                        .await
                        .map(|()| path.to_owned())
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            };
            Ok::<_, ToolError>(self.render_speech(&speech, &kept, saved))
        };
        tokio::select! {
            outcome = work => self.respond(outcome),
            () = cancel.cancelled() => cancelled(),
        }
    }

    /// Speech as the tool's result: the text, then the audio (within the inline cap) and
    /// its link. When it could not be kept there is no link: the audio comes inline if it
    /// fits, and the text says why.
    fn render_speech(
        &self,
        speech: &Speech,
        kept: &Result<Kept, String>,
        saved: Option<Result<String, String>>,
    ) -> CallToolResult {
        let blocks = match kept {
            Ok(kept) => self.media_blocks(kept, &speech.bytes),
            Err(_) if speech.bytes.len() <= self.app.media.inline_max() => {
                let data = base64::engine::general_purpose::STANDARD.encode(&speech.bytes);
                vec![ContentBlock::audio(data, speech.format.mime().to_owned())]
            }
            Err(_) => Vec::new(),
        };
        let inline = blocks.iter().any(|b| b.as_audio().is_some());
        let uri = kept.as_ref().ok().map(|k| k.uri.as_str());
        let mut text = format!(
            "Spoke {} characters with {}",
            speech.characters, speech.model
        );
        if let Some(voice) = &speech.voice {
            let _ = write!(text, " (voice {voice})");
        }
        let _ = write!(
            text,
            ": {} audio, {} bytes",
            speech.format.name(),
            speech.bytes.len()
        );
        if let Some(seconds) = speech.duration_seconds {
            let _ = write!(text, ", {seconds:.2} s");
        }
        text.push('.');
        if let Some(uri) = uri {
            let _ = write!(text, " Resource: {uri}");
            if !inline {
                text.push_str(
                    " (too large to include here; read it with resources/read or pass it to transcribe)",
                );
            }
            text.push('.');
        }
        if let Err(problem) = kept {
            let _ = write!(
                text,
                " It could not be kept as a vultr://media link ({problem}), so there is none; "
            );
            text.push_str(match (inline, matches!(saved, Some(Ok(_)))) {
                (true, _) => "the audio is included here.",
                (false, true) => "it is too large to include here, and is only in the saved file.",
                (false, false) => "it is too large to include here, and is lost: speak again with a shorter text or save_to.",
            });
        }
        match &saved {
            Some(Ok(path)) => {
                let _ = write!(text, " Saved to {path}.");
            }
            Some(Err(problem)) => {
                let _ = write!(text, " Not saved: {problem}.");
            }
            None => {}
        }
        let _ = write!(text, "\n[{}]", cost_line(&speech.cost));
        let mut result = self.success(
            text,
            SpeakResult {
                model: &speech.model,
                format: speech.format.name(),
                mime_type: speech.format.mime(),
                voice: speech.voice.as_deref(),
                characters: speech.characters,
                bytes: speech.bytes.len(),
                duration_seconds: speech.duration_seconds,
                cost_usd: speech.cost.usd,
                cost_basis: &speech.cost.basis,
                latency_ms: speech.latency_ms,
                uri,
                inline,
                saved_to: saved
                    .as_ref()
                    .and_then(|s| s.as_ref().ok())
                    .map(String::as_str),
            },
        );
        result.content.extend(blocks);
        result
    }

    async fn list_voices(&self, call: Call) -> CallToolResult {
        let Call {
            arguments, cancel, ..
        } = call;
        let work = async {
            let args = decode::<ListVoicesArgs>(arguments)?;
            let model = self
                .app
                .models
                .pick(ModelKind::Speech, args.model.as_deref())
                .await?;
            let voices = self
                .app
                .audio
                .voices(&model.id)
                .await
                .map_err(ToolError::from)?;
            Ok::<_, ToolError>(self.success(
                render_voices(&model.id, &voices),
                VoiceList {
                    model: &model.id,
                    voices: &voices,
                },
            ))
        };
        tokio::select! {
            outcome = work => self.respond(outcome),
            () = cancel.cancelled() => cancelled(),
        }
    }

    async fn transcribe(&self, call: Call) -> CallToolResult {
        let Call {
            owner,
            arguments,
            cancel,
            local_files,
            progress,
            spend,
            ..
        } = call;
        let work = async {
            let args = decode::<TranscribeArgs>(arguments)?;
            // A blank source is no source, for the count and the choice alike.
            let given = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
            let (data, uri, path) = (given(args.data), given(args.uri), given(args.path));
            if [data.is_some(), uri.is_some(), path.is_some()]
                .into_iter()
                .filter(|&g| g)
                .count()
                != 1
            {
                return Err(AudioError::Source.into());
            }
            // A web address is refused before anything else happens.
            let media = uri.as_deref().map(audio::media_id).transpose()?;
            let model = self
                .app
                .models
                .pick(ModelKind::Transcription, args.model.as_deref())
                .await?;
            let upload = match (&data, media, &path) {
                (Some(data), _, _) => {
                    Audio::upload_from_data(&model, data, args.filename.as_deref())?
                }
                (_, Some(id), _) => {
                    let stored = self
                        .app
                        .media
                        .read(&owner, id)
                        .await?
                        .ok_or_else(|| AudioError::MediaNotFound(id.to_owned()))?;
                    audio::upload_from_media(id, &stored.mime, Some(&stored.name), stored.bytes)
                }
                (_, _, Some(path)) => Audio::upload_from_path(&model, path, local_files).await?,
                _ => return Err(AudioError::Source.into()),
            };
            let options = TranscriptionOptions {
                language: args.language,
                prompt: args.prompt,
            };
            let bytes = upload.bytes.len();
            notify(
                &progress,
                format!("uploading {bytes} bytes to {}", model.id),
            )
            .await;
            let transcript = self
                .app
                .audio
                .transcribe(&model, upload, options, &spend)
                .await?;
            Ok::<_, ToolError>(self.render_transcript(&transcript))
        };
        tokio::select! {
            outcome = work => self.respond(outcome),
            () = cancel.cancelled() => cancelled(),
        }
    }

    fn render_transcript(&self, transcript: &Transcript) -> CallToolResult {
        let mut text = if transcript.text.trim().is_empty() {
            "(no speech was heard)".to_owned()
        } else {
            transcript.text.clone()
        };
        let _ = write!(
            text,
            "\n\n[model {}, {} bytes",
            transcript.model, transcript.bytes
        );
        if let Some(seconds) = transcript.duration_seconds {
            let _ = write!(text, ", {seconds:.2} s");
        }
        let _ = write!(text, "; {}]", cost_line(&transcript.cost));
        self.success(
            text,
            TranscribeResult {
                text: &transcript.text,
                model: &transcript.model,
                bytes: transcript.bytes,
                duration_seconds: transcript.duration_seconds,
                cost_usd: transcript.cost.usd,
                cost_basis: &transcript.cost.basis,
                latency_ms: transcript.latency_ms,
            },
        )
    }
}

/// Tells a caller who asked for progress what the call is waiting on (Vultr sends
/// nothing until the audio or the text is ready).
async fn notify(progress: &Option<CallProgress>, message: String) {
    if let Some(progress) = progress.clone() {
        progress.send(ProgressUpdate { tokens: 0, message }).await;
    }
}

/// A cost as one line: `$0.000630 (42.00 characters at ...)` or `not priced: ...`.
fn cost_line(cost: &Cost) -> String {
    match cost.usd {
        Some(usd) => format!("${usd:.6} ({})", cost.basis),
        None => cost.basis.clone(),
    }
}

fn render_voices(model: &str, voices: &[Voice]) -> String {
    if voices.is_empty() {
        return format!("{model} lists no voices; speak without `voice` uses its default.");
    }
    let mut text = format!("{} voices of {model}:\n", voices.len());
    for voice in voices {
        let _ = write!(text, "- {}", voice.id);
        if let Some(name) = voice.name.as_deref().filter(|n| *n != voice.id) {
            let _ = write!(text, " ({name})");
        }
        if let Some(description) = &voice.description {
            let _ = write!(text, ": {description}");
        }
        let tags: Vec<&str> = [voice.mode.as_deref(), voice.native_language.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !tags.is_empty() {
            let _ = write!(text, " [{}]", tags.join(", "));
        }
        text.push('\n');
    }
    text
}
