//! The audio endpoints of the inference API: `POST /audio/speech`, `GET /audio/voices`,
//! `POST /audio/transcriptions`. Vultr documents requests only; the answers' shapes come
//! from Vultr's own plugin code (vultr-surfaces.md §3, §4), so every guess about them lives
//! in this one file: [`parse_voices`] and [`parse_transcription`].

use serde::Serialize;
use serde_json::Value;

use super::error::{Api, VultrError, snippet};
use super::inference::{Bytes, InferenceClient, Patience};
use crate::secret::ApiKey;

/// Path of text to speech.
const SPEECH: &str = "/audio/speech";
/// Path of the voices of a speech model.
const VOICES: &str = "/audio/voices";
/// Path of speech to text.
const TRANSCRIPTIONS: &str = "/audio/transcriptions";

/// The body of `POST /audio/speech`; only `model`, `input` and `response_format` are
/// always sent (an omitted voice is the model's default speaker).
#[derive(Debug, Clone, Serialize)]
pub struct SpeechRequest {
    /// The speech model.
    pub model: String,
    /// The text to speak.
    pub input: String,
    /// `mp3`, `opus`, `flac` or `wav`.
    pub response_format: String,
    /// A voice id of `GET /audio/voices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// Speaking rate, 1 being normal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// How to speak (tone, style).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The language of the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One voice of a speech model.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Voice {
    /// The id to send as `voice`.
    pub id: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it sounds like.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// e.g. `custom_voice`, `voice_design`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The language it speaks natively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_language: Option<String>,
}

/// Audio to transcribe, as uploaded.
#[derive(Debug, Clone)]
pub struct AudioUpload {
    /// The audio.
    pub bytes: Vec<u8>,
    /// A file name whose extension the engine recognises (`speech.wav`).
    pub filename: String,
    /// Its MIME type (`audio/wav`).
    pub mime: String,
}

/// The optional fields of a transcription.
#[derive(Debug, Clone, Default)]
pub struct TranscriptionOptions {
    /// The spoken language, e.g. `en`.
    pub language: Option<String>,
    /// Text to guide the model (names, spelling).
    pub prompt: Option<String>,
}

impl InferenceClient {
    /// `POST /audio/speech`: the audio as raw bytes (labelled by the format asked for;
    /// Vultr's `Content-Type` is not documented).
    pub async fn speech(&self, key: &ApiKey, request: &SpeechRequest) -> Result<Bytes, VultrError> {
        self.post_for_bytes(key, SPEECH, request, Patience::Long)
            .await
    }

    /// `GET /audio/voices?model=`: the voices of `model`.
    pub async fn voices(&self, key: &ApiKey, model: &str) -> Result<Vec<Voice>, VultrError> {
        let body = self
            .get_json(key, VOICES, &[("model", model)], Patience::Quick)
            .await?;
        parse_voices(&body).ok_or_else(|| unexpected(&body.to_string(), "no list of voices"))
    }

    /// `POST /audio/transcriptions` (multipart `file`, `model`, `language?`, `prompt?`): the text.
    pub async fn transcribe(
        &self,
        key: &ApiKey,
        model: &str,
        upload: &AudioUpload,
        options: &TranscriptionOptions,
    ) -> Result<String, VultrError> {
        let form = || {
            let file = reqwest::multipart::Part::bytes(upload.bytes.clone())
                .file_name(upload.filename.clone());
            let file = match file.mime_str(&upload.mime) {
                Ok(file) => file,
                Err(_) => reqwest::multipart::Part::bytes(upload.bytes.clone())
                    .file_name(upload.filename.clone()),
            };
            let mut form = reqwest::multipart::Form::new()
                .part("file", file)
                .text("model", model.to_owned());
            if let Some(language) = &options.language {
                form = form.text("language", language.clone());
            }
            if let Some(prompt) = &options.prompt {
                form = form.text("prompt", prompt.clone());
            }
            form
        };
        let answer = self
            .post_multipart_for_bytes(key, TRANSCRIPTIONS, form, Patience::Long)
            .await?;
        parse_transcription(&answer).ok_or_else(|| {
            unexpected(
                &String::from_utf8_lossy(&answer.body),
                "no `text` in the transcription",
            )
        })
    }
}

/// The voices of a `GET /audio/voices` answer: `{data: [...]}` (Vultr's plugin), or
/// `{voices: [...]}`, or a bare array; each an object with `id` (or `voice`, or `name`),
/// or a plain string. `None` when no list is found.
pub fn parse_voices(body: &Value) -> Option<Vec<Voice>> {
    let entries = match body {
        Value::Array(entries) => entries,
        Value::Object(map) => ["data", "voices"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))?,
        _ => return None,
    };
    let text = |entry: &Value, key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(
        entries
            .iter()
            .filter_map(|entry| match entry {
                Value::String(id) if !id.trim().is_empty() => Some(Voice {
                    id: id.trim().to_owned(),
                    name: None,
                    description: None,
                    mode: None,
                    native_language: None,
                }),
                Value::Object(_) => Some(Voice {
                    id: text(entry, "id")
                        .or_else(|| text(entry, "voice"))
                        .or_else(|| text(entry, "name"))?,
                    name: text(entry, "name"),
                    description: text(entry, "description"),
                    mode: text(entry, "mode"),
                    native_language: text(entry, "native_language")
                        .or_else(|| text(entry, "language")),
                }),
                _ => None,
            })
            .collect(),
    )
}

/// The text of a transcription answer: `{"text": ...}` (Vultr's plugin), a JSON string,
/// or a plain text body (as `response_format=text` answers). `None` for JSON without text.
pub fn parse_transcription(answer: &Bytes) -> Option<String> {
    let body = String::from_utf8_lossy(&answer.body);
    match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(map)) => map.get("text").and_then(Value::as_str).map(str::to_owned),
        Ok(Value::String(text)) => Some(text),
        Ok(_) => None,
        Err(_) => Some(body.trim().to_owned()),
    }
}

/// A success body that is not the shape expected of it.
fn unexpected(body: &str, problem: &str) -> VultrError {
    VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: problem.to_owned(),
        snippet: snippet(body, 200),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ids(body: Value) -> Vec<String> {
        parse_voices(&body)
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect()
    }

    #[test]
    fn voices_are_read_from_every_known_shape() {
        let plugin = json!({"object": "list", "model": "qwen3-tts-12hz-1.7b", "data": [
            {"id": "ryan", "name": "Ryan", "description": "Dynamic male voice.", "mode": "custom_voice", "native_language": "English"},
            {"id": "design", "name": "Voice design", "description": "A new voice.", "mode": "voice_design"}]});
        let voices = parse_voices(&plugin).unwrap();
        assert_eq!(voices[0].native_language.as_deref(), Some("English"));
        assert_eq!(voices[1].mode.as_deref(), Some("voice_design"));
        assert_eq!(ids(plugin), ["ryan", "design"]);
        assert_eq!(
            ids(json!({"voices": [{"voice": "a"}, {"name": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(ids(json!(["a", " ", {"nothing": 1}, 3])), ["a"]);
        assert_eq!(parse_voices(&json!({"object": "list"})), None);
        assert_eq!(parse_voices(&json!("ryan")), None);
    }

    #[test]
    fn a_transcription_is_read_as_json_or_plain_text() {
        let answer = |body: &str| Bytes {
            body: body.as_bytes().to_vec(),
            content_type: None,
        };
        assert_eq!(
            parse_transcription(&answer(r#"{"text":"hello there","language":"en"}"#)).as_deref(),
            Some("hello there")
        );
        assert_eq!(
            parse_transcription(&answer(r#""quoted""#)).as_deref(),
            Some("quoted")
        );
        assert_eq!(
            parse_transcription(&answer("plain words\n")).as_deref(),
            Some("plain words")
        );
        assert_eq!(parse_transcription(&answer(r#"{"segments":[]}"#)), None);
    }
}
