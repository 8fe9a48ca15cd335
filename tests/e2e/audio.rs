//! The `audio` toolset on the binary: over stdio a sentence is spoken to a local file and
//! transcribed back (from that file and from its media link); over HTTP two principals'
//! media stay apart and no client may name a file on the server's machine.

use base64::Engine as _;
use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::audio::{SPEECH_PATH, TRANSCRIPTIONS_PATH};
use crate::support::mcp::Server;
use crate::support::session::{err, ok};

const AUDIO: (&str, &str) = ("VULTR_MCP_TOOLSETS", "core,audio");

#[tokio::test]
async fn over_stdio_speech_is_saved_and_transcribed_back_from_the_file_and_the_link() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[AUDIO]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greeting.wav");
    let spoken = server
        .call(
            "speak",
            json!({"text": "Good morning, world.", "format": "wav", "voice": "ryan", "save_to": file.to_str().unwrap()}),
        )
        .await;
    let structured = ok(&spoken);
    let audio = spoken
        .content
        .iter()
        .find_map(|block| block.as_audio())
        .expect("inline audio");
    assert_eq!(audio.mime_type, "audio/wav");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&audio.data)
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the saved file is the user's alone");
    }

    let from_file = ok(&server
        .call("transcribe", json!({"path": file.to_str().unwrap()}))
        .await);
    assert_eq!(from_file["text"], "Good morning, world.");
    let from_link = ok(&server
        .call("transcribe", json!({"uri": structured["uri"]}))
        .await);
    assert_eq!(from_link["text"], "Good morning, world.");
    assert_eq!(fake.count("POST", SPEECH_PATH).await, 1);
    assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 2);
    server.stop().await;
}

#[cfg(unix)]
mod http {
    use rmcp::model::ReadResourceRequestParams;

    use super::*;
    use crate::support::http::{ALICE_TOKEN, BOB_TOKEN, Generation, for_alice_and_bob};

    #[tokio::test]
    async fn over_http_principals_keep_their_media_apart_and_name_no_local_file() {
        let fake = FakeVultr::start().await;
        let (server, _tokens) = for_alice_and_bob(&fake, &[AUDIO]).await;
        let alice = server
            .connect(Generation::Stateless, Some(ALICE_TOKEN))
            .await;
        let bob = server.connect(Generation::Sessions, Some(BOB_TOKEN)).await;

        let spoken = ok(&alice
            .call("speak", json!({"text": "Alice's words.", "format": "mp3"}))
            .await);
        let uri = spoken["uri"].as_str().unwrap().to_owned();
        let heard = ok(&alice.call("transcribe", json!({"uri": uri})).await);
        assert_eq!(heard["text"], "Alice's words.");
        let read = alice
            .client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .expect("alice reads her own media");
        assert_eq!(
            serde_json::to_value(&read.contents[0]).unwrap()["mimeType"],
            "audio/mpeg"
        );

        // Another's media reads exactly as media that never existed.
        let theirs = err(&bob.call("transcribe", json!({"uri": uri})).await);
        let never = "vultr://media/00000000-0000-4000-8000-000000000000";
        let nobodys = err(&bob.call("transcribe", json!({"uri": never})).await);
        let id = uri.trim_start_matches("vultr://media/");
        assert_eq!(
            theirs.replace(id, "ID"),
            nobodys.replace(never.trim_start_matches("vultr://media/"), "ID")
        );
        assert!(
            bob.client
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .is_err(),
            "bob cannot read alice's media"
        );

        // No file on the server's machine, read or written, and nothing sent for it.
        let refused = err(&bob
            .call("transcribe", json!({"path": "/etc/hostname.wav"}))
            .await);
        assert!(
            refused.contains("over stdio only") && !refused.contains("/etc"),
            "{refused}"
        );
        let refused = err(&bob
            .call("speak", json!({"text": "hi", "save_to": "/tmp/bob.wav"}))
            .await);
        assert!(
            refused.contains("over stdio only") && !refused.contains("/tmp"),
            "{refused}"
        );
        assert_eq!(fake.count("POST", SPEECH_PATH).await, 1);
        assert_eq!(fake.count("POST", TRANSCRIPTIONS_PATH).await, 1);
        alice.client.cancel().await.ok();
        bob.client.cancel().await.ok();
        server.terminate().await;
    }
}
