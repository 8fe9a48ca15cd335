//! The `audio` toolset: `speak`, `list_voices` and `transcribe` against the fake's audio
//! routes (tests/support/fake_vultr/audio.rs): catalog checks before anything is sent,
//! audio content and its MIME type, cost, local files over stdio only, uploads.

use base64::Engine as _;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::audio::{
    SECONDS_PER_CHARACTER, SPEECH_PATH, TRANSCRIPTION_MODEL, TRANSCRIPTIONS_PATH, VOICES_PATH, wav,
};
use crate::support::in_process::{RawSession, Server};
use crate::support::{fake_vultr::*, session::*};

const AUDIO: (&str, &str) = ("VULTR_MCP_TOOLSETS", "core,audio");

async fn audio_server(fake: &FakeVultr, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![AUDIO];
    env.extend_from_slice(extra);
    Server::with_fake(fake, &env).await
}

/// The audio blocks of a result: (MIME type, decoded bytes).
fn audio_blocks(result: &CallToolResult) -> Vec<(String, Vec<u8>)> {
    result
        .content
        .iter()
        .filter_map(|block| block.as_audio())
        .map(|audio| {
            (
                audio.mime_type.clone(),
                base64::engine::general_purpose::STANDARD
                    .decode(&audio.data)
                    .expect("audio content is base64"),
            )
        })
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn speak_returns_audio_of_the_format_asked_with_its_mime_type() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    for (format, mime, magic) in [
        ("wav", "audio/wav", b"RIFF".as_slice()),
        ("mp3", "audio/mpeg", b"ID3"),
        ("flac", "audio/flac", b"fLaC"),
        ("opus", "audio/ogg", b"OggS"),
    ] {
        let result = server
            .call("speak", json!({"text": "Hello there.", "format": format}))
            .await;
        let structured = ok(&result);
        assert_eq!(structured["mime_type"], mime, "{format}");
        assert_eq!(structured["format"], format);
        let blocks = audio_blocks(&result);
        assert_eq!(blocks.len(), 1, "{format}: {}", text(&result));
        assert_eq!(blocks[0].0, mime);
        assert!(blocks[0].1.starts_with(magic), "{format}");
        assert_eq!(structured["bytes"], blocks[0].1.len());
    }
    let sent: Vec<Value> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path == SPEECH_PATH)
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent[0],
        json!({"model": "qwen3-tts-12hz-1.7b", "input": "Hello there.", "response_format": "wav"}),
        "only model, input and response_format are always sent"
    );
}

#[tokio::test]
async fn a_wav_has_its_duration_and_the_cost_is_per_character_as_the_catalog_prices() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let spoken = "Twenty characters!!!";
    let result = server
        .call(
            "speak",
            json!({"text": spoken, "format": "wav", "voice": "ryan", "speed": 2, "instructions": "calm", "language": "English"}),
        )
        .await;
    let structured = ok(&result);
    let seconds = 20.0 * SECONDS_PER_CHARACTER / 2.0;
    assert!(
        (structured["duration_seconds"].as_f64().unwrap() - seconds).abs() < 1e-6,
        "{structured}"
    );
    // The fixture prices qwen3-tts at $0.000015 per character.
    let cost = structured["cost_usd"].as_f64().unwrap();
    assert!((cost - 20.0 * 0.000015).abs() < 1e-12, "{structured}");
    assert_contains(&text(&result), &["$0.000300"]);
    assert_contains(&text(&result), &["per character"]);
    let sent = fake
        .requests()
        .await
        .into_iter()
        .find(|r| r.path == SPEECH_PATH)
        .and_then(|r| r.body)
        .unwrap();
    assert_eq!(
        sent,
        json!({"model": "qwen3-tts-12hz-1.7b", "input": spoken, "response_format": "wav",
               "voice": "ryan", "speed": 2.0, "instructions": "calm", "language": "English"})
    );
}

#[tokio::test]
async fn text_over_the_catalog_limit_and_bad_options_are_refused_before_anything_is_sent() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let too_long = "a".repeat(6001);
    let error = err(&server.call("speak", json!({"text": too_long})).await);
    assert_contains(&error, &["6001 characters"]);
    assert_contains(&error, &["at most 6000"]);
    // Exactly at the limit is fine: the limit is the catalog's, read by unit.
    ok(&server
        .call("speak", json!({"text": "é".repeat(6000)}))
        .await);
    assert_eq!(fake.count("POST", SPEECH_PATH).await, 1);

    let error = err(&server
        .call("speak", json!({"text": "hi", "format": "pcm"}))
        .await);
    assert_contains(&error, &["use one of mp3, opus, flac, wav"]);
    let error = err(&server
        .call("speak", json!({"text": "hi", "speed": 5}))
        .await);
    assert_contains(&error, &["range 0.25 to 4"]);
    let error = err(&server.call("speak", json!({"text": "  "})).await);
    assert_contains(&error, &["`text` is empty"]);
    let error = err(&server
        .call("speak", json!({"text": "hi", "model": "kimi-k2-instruct"}))
        .await);
    assert_contains(&error, &["is not a text-to-speech model"]);
    assert_eq!(
        fake.count("POST", SPEECH_PATH).await,
        1,
        "none of these was sent"
    );
}

#[tokio::test]
async fn an_unknown_voice_is_refused_with_the_models_voices_read_once() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    // `vivian` is in the catalog's enum but not among the voices Vultr lists.
    let error = err(&server
        .call("speak", json!({"text": "hi", "voice": "vivian"}))
        .await);
    assert_contains(
        &error,
        &["`voice` \"vivian\" is not a voice of qwen3-tts-12hz-1.7b"],
    );
    assert_contains(&error, &["ryan, design"]);
    assert_eq!(fake.count("POST", SPEECH_PATH).await, 0);
    ok(&server
        .call("speak", json!({"text": "hi", "voice": "design"}))
        .await);
    assert_eq!(
        fake.count("GET", VOICES_PATH).await,
        1,
        "the voices are kept for a while"
    );
}

#[tokio::test]
async fn list_voices_shows_each_voice_of_the_model() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let result = server.call("list_voices", json!({})).await;
    let structured = ok(&result);
    assert_eq!(structured["model"], "qwen3-tts-12hz-1.7b");
    assert_eq!(structured["voices"][0]["id"], "ryan");
    assert_eq!(structured["voices"][0]["native_language"], "English");
    assert_eq!(structured["voices"][1]["mode"], "voice_design");
    let shown = text(&result);
    assert_contains(
        &shown,
        &["- ryan (Ryan): Dynamic male voice. [custom_voice, English]"],
    );
    let recorded = fake.requests().await;
    let asked = recorded.iter().find(|r| r.path == VOICES_PATH).unwrap();
    assert_eq!(asked.method, "GET");

    let error = err(&server
        .call("list_voices", json!({"model": "whisper-large-v3-turbo"}))
        .await);
    assert_contains(&error, &["is not a text-to-speech model"]);
}

#[tokio::test]
async fn voices_in_another_shape_are_read_too() {
    let fake = FakeVultr::start().await;
    wiremock::Mock::given(wiremock::matchers::path(VOICES_PATH))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"voices": ["ryan", "serena"]})),
        )
        .with_priority(1)
        .mount(fake.mock_server())
        .await;
    let server = audio_server(&fake, &[]).await;
    let structured = ok(&server.call("list_voices", json!({})).await);
    assert_eq!(
        structured["voices"],
        json!([{"id": "ryan"}, {"id": "serena"}])
    );
}

#[tokio::test]
async fn save_to_writes_a_private_file_over_stdio() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.wav");
    let result = server
        .call(
            "speak",
            json!({"text": "Saved speech.", "format": "wav", "save_to": path.to_str().unwrap()}),
        )
        .await;
    let structured = ok(&result);
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written, audio_blocks(&result)[0].1);
    assert_eq!(structured["saved_to"], path.to_str().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A file that cannot be written does not lose the audio: the call still succeeds.
    let nowhere = dir.path().join("missing-dir/x.wav");
    let result = server
        .call(
            "speak",
            json!({"text": "Saved speech.", "save_to": nowhere.to_str().unwrap()}),
        )
        .await;
    assert!(ok(&result).get("saved_to").is_none());
    assert_contains(
        &text(&result),
        &["Not saved: could not write the file given as `save_to`: no such file"],
    );
}

#[tokio::test]
async fn transcribe_sends_the_file_with_its_name_and_returns_the_text() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let audio = wav("The quick brown fox.", 1.0);
    let result = server
        .call(
            "transcribe",
            json!({"data": b64(&audio), "filename": "fox.wav", "language": "en", "prompt": "fox"}),
        )
        .await;
    let structured = ok(&result);
    assert_eq!(structured["text"], "The quick brown fox.");
    assert_eq!(structured["model"], TRANSCRIPTION_MODEL);
    let seconds = 20.0 * SECONDS_PER_CHARACTER;
    assert!((structured["duration_seconds"].as_f64().unwrap() - seconds).abs() < 1e-6);
    // whisper is priced per second of audio: $0.00001111.
    let cost = structured["cost_usd"].as_f64().unwrap();
    assert!((cost - seconds * 0.00001111).abs() < 1e-12, "{structured}");
    assert!(text(&result).starts_with("The quick brown fox."));
    let seen = fake.transcriptions();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].filename.as_deref(), Some("fox.wav"));
    assert_eq!(seen[0].content_type.as_deref(), Some("audio/wav"));
    assert_eq!(seen[0].bytes, audio.len());
    assert_eq!(seen[0].model.as_deref(), Some(TRANSCRIPTION_MODEL));
    assert_eq!(seen[0].language.as_deref(), Some("en"));
    assert_eq!(seen[0].prompt.as_deref(), Some("fox"));

    // An mp3 has no duration this server can read: not priced, and said so.
    let result = server
        .call(
            "transcribe",
            json!({"data": b64(b"ID3\x04junk"), "filename": "a.mp3"}),
        )
        .await;
    let structured = ok(&result);
    assert!(structured.get("cost_usd").is_none());
    assert_contains(&text(&result), &["not priced: duration unknown"]);
}

#[tokio::test]
async fn speech_spoken_by_speak_transcribes_back_to_its_text() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let spoken = server
        .call(
            "speak",
            json!({"text": "Round trip works.", "format": "mp3"}),
        )
        .await;
    let (_, bytes) = audio_blocks(&spoken).remove(0);
    let heard = server
        .call(
            "transcribe",
            json!({"data": b64(&bytes), "filename": "speech.mp3"}),
        )
        .await;
    assert_eq!(ok(&heard)["text"], "Round trip works.");
}

#[tokio::test]
async fn audio_the_model_cannot_take_is_refused_before_upload() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    // whisper's catalog entry accepts audio/wav and audio/mpeg only.
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": b64(b"fLaC...."), "filename": "a.flac"}),
        )
        .await);
    assert_contains(
        &error,
        &["does not accept audio/flac audio; it accepts audio/wav, audio/mpeg"],
    );
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": b64(b"RIFF"), "filename": "notes.txt"}),
        )
        .await);
    assert_contains(&error, &["no audio extension"]);
    let error = err(&server
        .call("transcribe", json!({"data": b64(b"RIFF")}))
        .await);
    assert_contains(&error, &["needs a `filename`"]);
    let error = err(&server
        .call("transcribe", json!({"data": "%%%", "filename": "a.wav"}))
        .await);
    assert_contains(&error, &["not valid base64"]);
    // Over the catalog's duration cap (14400 s): a WAV header saying 4 hours and 1 second.
    let mut long = wav("x", 1.0);
    let data_at = long.len() - 800 - 4;
    long[data_at..data_at + 4].copy_from_slice(&(14_401u32 * 16_000).to_le_bytes());
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": b64(&long), "filename": "long.wav"}),
        )
        .await);
    assert_contains(&error, &["lasts 14401 s"]);
    assert_contains(&error, &["at most 14400 s"]);
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 0);
}

/// The 2.4 catalog with the transcription model's size cap lowered to `max_bytes`, or
/// taken out when `None`.
fn catalog_with_size_cap(max_bytes: impl Into<Option<u64>>) -> Catalog {
    let mut catalog: Value = serde_json::from_str(CATALOG_DOCUMENT_24).unwrap();
    let whisper = catalog["data"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["id"] == TRANSCRIPTION_MODEL)
        .unwrap();
    let inputs = &mut whisper["input_modalities"][0]["supported_inputs"];
    match max_bytes.into() {
        Some(max) => inputs["max_file_size"]["value"] = json!(max),
        None => {
            inputs
                .as_object_mut()
                .unwrap()
                .remove("max_file_size")
                .unwrap();
        }
    }
    Catalog::Raw(catalog)
}

#[tokio::test]
async fn audio_over_the_catalogs_size_cap_is_refused_before_upload() {
    let fake = FakeVultr::builder()
        .catalog(catalog_with_size_cap(1000))
        .start()
        .await;
    let server = audio_server(&fake, &[]).await;
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": b64(&[0u8; 1001]), "filename": "big.mp3"}),
        )
        .await);
    assert_contains(&error, &["1001 bytes", "at most 1000 bytes"]);
    // Measured before it is decoded: over the cap, not even valid base64 gets that far.
    let mut oversized = "A".repeat(1400);
    oversized.push('!');
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": oversized, "filename": "big.mp3"}),
        )
        .await);
    assert_contains(&error, &["1050 bytes", "at most 1000 bytes"]);
    // A local file is measured before it is read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp3");
    std::fs::write(&path, [0u8; 1001]).unwrap();
    let error = err(&server
        .call("transcribe", json!({"path": path.to_str().unwrap()}))
        .await);
    assert_contains(&error, &["at most 1000 bytes"]);
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 0);
    // At the cap exactly, it goes.
    ok(&server
        .call(
            "transcribe",
            json!({"data": b64(&[0u8; 1000]), "filename": "ok.mp3"}),
        )
        .await);
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 1);
}

#[tokio::test]
async fn a_local_file_is_transcribed_over_stdio_without_its_path_in_any_message() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memo.wav");
    std::fs::write(&path, wav("From a file.", 1.0)).unwrap();
    let result = server
        .call("transcribe", json!({"path": path.to_str().unwrap()}))
        .await;
    assert_eq!(ok(&result)["text"], "From a file.");
    assert_eq!(
        fake.transcriptions()[0].filename.as_deref(),
        Some("memo.wav")
    );
    let missing = dir.path().join("secret-folder/gone.wav");
    let error = err(&server
        .call("transcribe", json!({"path": missing.to_str().unwrap()}))
        .await);
    assert_contains(
        &error,
        &["could not read the file given as `path`: no such file"],
    );
    assert!(!error.contains("secret-folder"), "{error}");
}

#[tokio::test]
async fn urls_and_foreign_uris_are_refused_and_nothing_is_fetched() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let url = format!("{}/v1/audio/speech", fake.inference_base_url());
    for uri in [url.as_str(), "https://example.com/a.wav"] {
        let error = err(&server.call("transcribe", json!({"uri": uri})).await);
        assert_contains(&error, &["this server never fetches URLs"]);
    }
    let error = err(&server
        .call("transcribe", json!({"uri": "file:///etc/passwd"}))
        .await);
    assert_contains(&error, &["must be vultr://media/{id}"]);
    let error = err(&server.call("transcribe", json!({})).await);
    assert_contains(&error, &["exactly one of `data`"]);
    let error = err(&server
        .call(
            "transcribe",
            json!({"data": "UklGRg==", "filename": "a.wav", "uri": "vultr://media/x"}),
        )
        .await);
    assert_contains(&error, &["exactly one of `data`"]);
    assert_eq!(
        fake.requests().await.len(),
        0,
        "not even the catalog was read"
    );
}

/// The `resource_link` blocks of a result: (uri, MIME type, size).
fn links(result: &CallToolResult) -> Vec<(String, Option<String>, Option<u64>)> {
    result
        .content
        .iter()
        .filter_map(|block| block.as_resource_link())
        .map(|link| (link.uri.clone(), link.mime_type.clone(), link.size))
        .collect()
}

#[tokio::test]
async fn speech_within_the_inline_cap_comes_inline_and_always_as_a_link_to_read_back() {
    let fake = FakeVultr::start().await;
    // The fake's WAV of 12 characters is 44 + 12 + 8 + 9600 bytes or so; mp3 a few hundred.
    let server = audio_server(&fake, &[("VULTR_MCP_MEDIA_INLINE_MAX", "2000")]).await;
    let small = server
        .call("speak", json!({"text": "Hello there.", "format": "mp3"}))
        .await;
    let structured = ok(&small);
    assert_eq!(structured["inline"], true);
    let (mime, bytes) = audio_blocks(&small).remove(0);
    let uri = structured["uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("vultr://media/"), "{uri}");
    assert_eq!(
        links(&small),
        [(uri.clone(), Some(mime), Some(bytes.len() as u64))]
    );
    let read = server
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let json = serde_json::to_value(&read.contents[0]).unwrap();
    assert_eq!(json["mimeType"], "audio/mpeg");
    assert_eq!(json["blob"], b64(&bytes));

    let large = server
        .call("speak", json!({"text": "Hello there.", "format": "wav"}))
        .await;
    let structured = ok(&large);
    assert_eq!(structured["inline"], false);
    assert!(structured["bytes"].as_u64().unwrap() > 2000);
    assert!(audio_blocks(&large).is_empty(), "over the cap: link only");
    let linked = links(&large);
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].1.as_deref(), Some("audio/wav"));
    assert_contains(&text(&large), &["too large to include here"]);
}

#[tokio::test]
async fn a_media_uri_is_transcribed_for_its_owner_and_is_not_found_for_anyone_else() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let alice = server
        .client_acting_for(vultr_inference_mcp::principal::Principal::new("alice").unwrap())
        .await;
    let bob = server
        .client_acting_for(vultr_inference_mcp::principal::Principal::new("bob").unwrap())
        .await;
    let spoken = alice
        .call("speak", json!({"text": "Only for Alice.", "format": "wav"}))
        .await;
    let uri = ok(&spoken)["uri"].as_str().unwrap().to_owned();
    let heard = alice.call("transcribe", json!({"uri": uri})).await;
    let structured = ok(&heard);
    assert_eq!(structured["text"], "Only for Alice.");
    assert!(structured["duration_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        fake.transcriptions()[0].filename.as_deref(),
        Some("speech.wav"),
        "the name keeps the extension the engine needs"
    );

    let not_found = err(&bob.call("transcribe", json!({"uri": uri})).await);
    let made_up = err(&bob
        .call("transcribe", json!({"uri": "vultr://media/no-such-id"}))
        .await);
    assert_contains(&not_found, &["no media", "is stored for you"]);
    assert_eq!(
        not_found.replace(uri.trim_start_matches("vultr://media/"), "ID"),
        made_up.replace("no-such-id", "ID"),
        "another's media reads exactly as a made-up id"
    );
    assert_eq!(fake.transcriptions().len(), 1);
}

#[tokio::test]
async fn a_caller_who_asks_for_progress_hears_what_the_call_waits_on() {
    let fake = FakeVultr::start().await;
    let settings = fake.settings();
    let env = overridden(&settings, &[AUDIO]);
    let mut session = RawSession::start(&env).await;
    session
        .call_tool(
            1,
            "speak",
            json!({"text": "Four words to say."}),
            Some(json!({"progressToken": "s-1"})),
        )
        .await;
    let (before, response) = session.until_response(1).await;
    assert_eq!(
        response.value["result"]["isError"], false,
        "{}",
        response.value
    );
    session
        .call_tool(
            2,
            "transcribe",
            json!({"data": b64(&wav("hi", 1.0)), "filename": "hi.wav"}),
            Some(json!({"progressToken": "t-1"})),
        )
        .await;
    let (during, response) = session.until_response(2).await;
    assert_eq!(
        response.value["result"]["isError"], false,
        "{}",
        response.value
    );
    let notices: Vec<(String, String)> = before
        .iter()
        .chain(&during)
        .filter(|l| l.value["method"] == "notifications/progress")
        .map(|l| {
            (
                l.value["params"]["progressToken"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                l.value["params"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let size = wav("hi", 1.0).len();
    assert_eq!(
        notices,
        [
            (
                "s-1".to_owned(),
                "speaking 18 characters with qwen3-tts-12hz-1.7b".to_owned()
            ),
            (
                "t-1".to_owned(),
                format!("uploading {size} bytes to {TRANSCRIPTION_MODEL}")
            ),
        ]
    );
    session.stop().await;
}

/// A raw inference API on loopback that serves the catalog and holds every speech request
/// open until its client closes the connection; the counts of speech requests received
/// and of those whose client hung up.
async fn stalling_speech() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (received, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, c) = (received.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (r, c) = (r.clone(), c.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                if head.starts_with(b"GET /v1/models") {
                    let body = CATALOG_DOCUMENT_24.as_bytes();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.write_all(body).await;
                    return;
                }
                r.fetch_add(1, Ordering::SeqCst);
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (base, received, closed)
}

#[tokio::test]
async fn a_cancelled_speak_closes_its_upstream_request() {
    use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
    use rmcp::service::PeerRequestOptions;
    use std::sync::atomic::Ordering;
    let (base, received, closed) = stalling_speech().await;
    let server = Server::start(&[
        AUDIO,
        ("VULTR_INFERENCE_BASE_URL", &base),
        ("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY),
    ])
    .await;
    let arguments = json!({"text": "Never finished."});
    let call = server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("speak")
                    .with_arguments(arguments.as_object().unwrap().clone()),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let waited = tokio::time::Instant::now();
    while received.load(Ordering::SeqCst) == 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "speech was never asked for"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 0, "the request is held open");
    call.cancel(Some("stop".to_owned())).await.unwrap();
    let waited = tokio::time::Instant::now();
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "the upstream request was not dropped on cancellation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_key_refused_by_an_audio_route_is_read_again_once() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    ok(&server.call("speak", json!({"text": "first"})).await);
    fake.rotate_key(DEFAULT_SUBSCRIPTION_ID, "INFKEY-ROTATED-0000-1111")
        .await;
    ok(&server
        .call(
            "transcribe",
            json!({"data": b64(&wav("second", 1.0)), "filename": "a.wav"}),
        )
        .await);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    let keys = fake
        .authorizations(&[SPEECH_PATH, TRANSCRIPTIONS_PATH])
        .await;
    assert_eq!(
        keys,
        [
            Some(format!("Bearer {DEFAULT_SUBSCRIPTION_KEY}")),
            Some(format!("Bearer {DEFAULT_SUBSCRIPTION_KEY}")),
            Some("Bearer INFKEY-ROTATED-0000-1111".to_owned()),
        ]
    );
}

#[tokio::test]
async fn without_a_catalog_size_limit_audio_is_capped_at_25_mib_before_it_is_read() {
    let fake = FakeVultr::builder()
        .catalog(catalog_with_size_cap(None))
        .start()
        .await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mp3");
    // Sparse: 25 MiB and a byte on disk costs nothing.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(25 * 1024 * 1024 + 1).unwrap();
    let error = err(&server
        .call("transcribe", json!({"path": path.to_str().unwrap()}))
        .await);
    assert_contains(
        &error,
        &[
            "26214401 bytes",
            "at most 26214400 bytes",
            "states no size limit",
        ],
    );
    file.set_len(25 * 1024 * 1024).unwrap();
    ok(&server
        .call("transcribe", json!({"path": path.to_str().unwrap()}))
        .await);
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn special_files_are_never_read_as_audio_whatever_they_are_named() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut special = Vec::new();
    // /dev/zero says 0 bytes and never ends; /proc/self/environ says 0 bytes and holds
    // the server's keys. Named like audio through links, they pass the extension check.
    for (name, target) in [
        ("zero.wav", "/dev/zero"),
        ("environ.wav", "/proc/self/environ"),
    ] {
        if std::path::Path::new(target).exists() {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(target, &link).unwrap();
            special.push((link, "special files are not read"));
        }
    }
    let fifo = dir.path().join("pipe.wav");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only makes the node.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    special.push((fifo, "not a regular file"));
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir(&folder).unwrap();
    special.push((folder, "not a regular file"));
    for (path, why) in special {
        let call = server.call("transcribe", json!({"path": path.to_str().unwrap()}));
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|_| panic!("{} hung", path.display()));
        let error = err(&result);
        assert_contains(&error, &["could not read the file given as `path`", why]);
        assert!(!error.contains(dir.path().to_str().unwrap()), "{error}");
    }
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 0);
}

#[tokio::test]
async fn a_blank_source_is_no_source() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memo.wav");
    std::fs::write(&path, wav("Blank data is ignored.", 1.0)).unwrap();
    let result = server
        .call(
            "transcribe",
            json!({"data": "  ", "uri": "", "path": path.to_str().unwrap()}),
        )
        .await;
    assert_eq!(ok(&result)["text"], "Blank data is ignored.");
    let error = err(&server
        .call("transcribe", json!({"data": " ", "path": ""}))
        .await);
    assert_contains(&error, &["exactly one of `data`"]);
}

#[tokio::test]
async fn save_to_never_overwrites_or_follows_a_link_and_the_audio_is_still_returned() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("bashrc");
    std::fs::write(&existing, "alias ls='ls -F'\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut targets = vec![(existing.clone(), existing.clone())];
    #[cfg(unix)]
    {
        // A link to an existing file, and a dangling one whose target must not appear.
        let link = dir.path().join("link.mp3");
        std::os::unix::fs::symlink(&existing, &link).unwrap();
        targets.push((link, existing.clone()));
        let dangling = dir.path().join("dangling.mp3");
        let nowhere = dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        targets.push((dangling, nowhere));
    }
    for (save_to, target) in targets {
        let result = server
            .call(
                "speak",
                json!({"text": "Not over it.", "format": "mp3", "save_to": save_to.to_str().unwrap()}),
            )
            .await;
        let structured = ok(&result);
        assert!(structured.get("saved_to").is_none(), "{structured}");
        assert_contains(
            &text(&result),
            &[
                "Not saved: could not write the file given as `save_to`",
                "already exists",
                "choose another name",
            ],
        );
        assert_eq!(audio_blocks(&result).len(), 1, "the audio is still inline");
        assert_eq!(links(&result).len(), 1, "and linked");
        if target == existing {
            assert_eq!(
                std::fs::read_to_string(&existing).unwrap(),
                "alias ls='ls -F'\n"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&existing).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o644, "not chmodded");
            }
        } else {
            assert!(!target.exists(), "the dangling link was followed");
        }
    }
}

#[tokio::test]
async fn speech_that_cannot_be_kept_still_comes_inline_and_is_saved_with_the_reason() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[("VULTR_MCP_MEDIA_MAX_PER_PRINCIPAL", "10")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept-locally.mp3");
    let result = server
        .call(
            "speak",
            json!({"text": "Paid for already.", "format": "mp3", "save_to": path.to_str().unwrap()}),
        )
        .await;
    let structured = ok(&result);
    let blocks = audio_blocks(&result);
    assert_eq!(blocks.len(), 1, "the audio is not lost: {}", text(&result));
    assert_eq!(blocks[0].0, "audio/mpeg");
    assert!(blocks[0].1.starts_with(b"ID3"));
    assert!(links(&result).is_empty());
    assert!(structured.get("uri").is_none(), "{structured}");
    assert_eq!(structured["inline"], true);
    assert_eq!(structured["saved_to"], path.to_str().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), blocks[0].1);
    let shown = text(&result);
    assert_contains(
        &shown,
        &[
            "could not be kept as a vultr://media link",
            "VULTR_MCP_MEDIA_MAX_PER_PRINCIPAL",
            "included here",
        ],
    );
}

#[tokio::test]
async fn a_200_that_is_not_audio_of_the_format_asked_is_an_upstream_error() {
    let fake = FakeVultr::start().await;
    let server = audio_server(&fake, &[]).await;
    let body = format!(r#"{{"error": "queued", "padding": "{}"}}"#, "z".repeat(300));
    fake.fail("POST", SPEECH_PATH, 200, &body, 1).await;
    let error = err(&server
        .call("speak", json!({"text": "Hello.", "format": "mp3"}))
        .await);
    assert_contains(&error, &["HTTP 200", "not mp3 audio", "queued"]);
    assert!(
        !error.contains(&"z".repeat(120)),
        "a short snippet only: {error}"
    );
    // The next answer is audio again, and goes through.
    ok(&server
        .call("speak", json!({"text": "Hello.", "format": "mp3"}))
        .await);
}
