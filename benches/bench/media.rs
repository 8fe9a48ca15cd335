//! One media call through the server (issue 17): `speak` of a short sentence as WAV, kept
//! as the caller's media and returned inline and as a link, against the tests' fake Vultr
//! (its wiremock server, which speaks the audio routes) on a runtime of its own; the same
//! speech request sent straight to the fake, alternated call by call, gives the time the
//! server adds (catalog checks, the voices check, keeping the media, base64 and the MCP
//! round trip).

use std::path::Path;
use std::time::Instant;

use rmcp::model::CallToolRequestParams;
use serde_json::json;

use super::support::fake_vultr::audio::SPEECH_PATH;
use super::support::fake_vultr::faults::FaultServer;
use super::support::fake_vultr::{CONFIGURED_KEY, FakeVultr};
use super::{Report, Server, cpu_time, ms, on_its_own_thread, percentile};

/// Calls made before measuring: catalog and voices fetched, connections warm.
const WARM_UP: usize = 30;
/// Calls measured each way.
const MEASURED: usize = 300;
/// What is spoken: 64 characters, about 3 s of the fake's 8 kHz WAV (51 KB).
const SENTENCE: &str = "The quick brown fox jumps over the lazy dog, twice before noon.";

/// The fake's base URL, served from a thread of its own for as long as the bench runs.
fn fake_on_its_own_thread() -> String {
    on_its_own_thread("fake-vultr-media", || async {
        let fake = FakeVultr::builder()
            .extra_inference_key(CONFIGURED_KEY)
            .start()
            .await;
        (fake.inference_base_url(), fake)
    })
}

/// `speak` through the server against the same request straight to the fake.
pub async fn speak(binary: &Path, faults: &FaultServer, report: &mut Report) {
    eprintln!("bench: one media call, speak ({MEASURED} sequential calls each way)…");
    let base = fake_on_its_own_thread();
    let (server, _) = Server::start_with(
        binary,
        faults,
        &[
            ("VULTR_INFERENCE_BASE_URL", base.as_str()),
            ("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY),
            ("VULTR_MCP_TOOLSETS", "core,audio"),
        ],
    )
    .await;
    let peer = server.peer();
    let arguments = json!({"text": SENTENCE, "format": "wav"});
    let through = || async {
        let result = peer
            .call_tool(
                CallToolRequestParams::new("speak")
                    .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
            )
            .await
            .expect("speak answers");
        assert_ne!(result.is_error, Some(true), "speak failed: {result:?}");
        result
    };
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let body = json!({"model": "qwen3-tts-12hz-1.7b", "input": SENTENCE, "response_format": "wav"});
    let url = format!("{base}{}", SPEECH_PATH.trim_start_matches("/v1"));
    let straight = || async {
        let response = direct
            .post(&url)
            .bearer_auth(CONFIGURED_KEY)
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        assert!(response.status().is_success());
        response.bytes().await.expect("the audio").len()
    };
    let mut audio_bytes = 0;
    for _ in 0..WARM_UP {
        through().await;
        audio_bytes = straight().await;
    }
    let mut served = Vec::with_capacity(MEASURED);
    let mut faked = Vec::with_capacity(MEASURED);
    let cpu_before = cpu_time(server.pid);
    for _ in 0..MEASURED {
        let t = Instant::now();
        straight().await;
        faked.push(t.elapsed());
        let t = Instant::now();
        through().await;
        served.push(t.elapsed());
    }
    let cpu_per_call = cpu_time(server.pid).saturating_sub(cpu_before) / MEASURED as u32;
    let s50 = percentile(&mut served, 50.0);
    let d50 = percentile(&mut faked, 50.0);
    report.info(
        format!("speak ({audio_bytes} B of WAV, inline + kept as media) through the server, p50"),
        ms(s50),
    );
    report.info("same speech request straight to the fake, p50", ms(d50));
    report.info(
        "speak: added latency, p50 (server p50 − direct p50)",
        ms(s50.saturating_sub(d50)),
    );
    report.info(
        "speak: added latency, p90",
        ms(percentile(&mut served, 90.0).saturating_sub(percentile(&mut faked, 90.0))),
    );
    report.info("server CPU time per speak (all threads)", ms(cpu_per_call));
    server.stop().await;
}
