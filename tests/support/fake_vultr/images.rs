//! The fake's image generation (`POST /v1/images/generations`), in the OpenAI shape the
//! bridge reads (Vultr documents none): `{created, data:[{b64_json}]}`, or with
//! `response_format: url` (or after [`FakeVultr::answer_images_with_urls`]) `{data:[{url}]}`
//! naming `GET /v1/images/files/{name}` on the fake's own host, which serves the PNG.
//! [`FakeVultr::answer_images_with_foreign_urls`] names another host instead.
//!
//! Every image is a real PNG of [`PNG_SIDE`]×[`PNG_SIDE`] pixels (whatever `size` asked),
//! one colour derived from the prompt, built by hand (stored deflate, CRC-32, Adler-32).

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::FakeVultr;
use super::Shared;
use super::json_response;
use super::retrieval::{authorized, checked_body};

/// Path of the inference API's image generation.
pub const IMAGES_PATH: &str = "/v1/images/generations";
/// Where the fake serves the images it gave as URLs.
pub const IMAGE_FILES_PATH: &str = "/v1/images/files";
/// A host that is not the inference API's, named by [`FakeVultr::answer_images_with_foreign_urls`].
pub const FOREIGN_IMAGE_HOST: &str = "images.cdn.invalid";
/// Width and height of every fake image, in pixels.
pub const PNG_SIDE: u32 = 4;

/// Priority of the variants: above the normal routes, below scripted failures.
const PRIORITY_VARIANT: u8 = 3;

/// How images come back.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// As the request's `response_format` asks (`b64_json` by default), 200.
    AsAsked,
    /// Always as URLs on the fake's own host, 201.
    OwnUrls,
    /// Always as URLs on [`FOREIGN_IMAGE_HOST`].
    ForeignUrls,
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32, as a zlib stream ends with it.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// One PNG chunk: length, type, data, CRC of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out
}

/// A valid [`PNG_SIDE`]-square RGB PNG filled with `rgb`.
pub fn png(rgb: [u8; 3]) -> Vec<u8> {
    let side = PNG_SIDE;
    let row: Vec<u8> = std::iter::once(0) // filter: none
        .chain(rgb.iter().copied().cycle().take(3 * side as usize))
        .collect();
    let raw = row.repeat(side as usize);
    // zlib: header, one stored (uncompressed) final deflate block, Adler-32.
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &zlib));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// The colour of image `k` of `prompt`.
fn colour(prompt: &str, k: usize) -> [u8; 3] {
    let hash = prompt.bytes().fold(k as u32 + 7, |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let [r, g, b, _] = hash.to_le_bytes();
    [r, g, b]
}

/// Answers `POST /v1/images/generations`.
struct Generate {
    state: Shared,
    base: String,
    delivery: Delivery,
}

impl Respond for Generate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = match checked_body(&self.state, request) {
            Ok(body) => body,
            Err(refusal) => return *refusal,
        };
        let prompt = body["prompt"].as_str().unwrap_or_default();
        let n = body["n"].as_u64().unwrap_or(1) as usize;
        let asked_url = body["response_format"].as_str() == Some("url");
        let data: Vec<Value> = (0..n)
            .map(|k| {
                let [r, g, b] = colour(prompt, k);
                let name = format!("{r:02x}{g:02x}{b:02x}.png");
                match self.delivery {
                    Delivery::AsAsked if !asked_url => json!({"b64_json":
                        base64::engine::general_purpose::STANDARD.encode(png([r, g, b]))}),
                    Delivery::AsAsked | Delivery::OwnUrls => {
                        json!({"url": format!("{}{IMAGE_FILES_PATH}/{name}", self.base)})
                    }
                    Delivery::ForeignUrls => {
                        json!({"url": format!("https://{FOREIGN_IMAGE_HOST}/{name}?sig=abc")})
                    }
                }
            })
            .collect();
        let status = match self.delivery {
            Delivery::AsAsked => 200,
            _ => 201,
        };
        json_response(status, json!({"created": 1_788_472_794u64, "data": data}))
    }
}

/// Serves `GET /v1/images/files/{rrggbb}.png` to a known key.
struct Files {
    state: Shared,
}

impl Respond for Files {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(&self.state, request) {
            return ResponseTemplate::new(401);
        }
        let name = request.url.path().rsplit('/').next().unwrap_or_default();
        let hex = name.trim_end_matches(".png");
        let byte =
            |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
        ResponseTemplate::new(200).set_body_raw(png([byte(0), byte(2), byte(4)]), "image/png")
    }
}

/// Mounts image generation and the image files, answering as asked.
pub(super) async fn mount(server: &MockServer, state: &Shared, priority: u8) {
    mount_delivery(server, state, priority, Delivery::AsAsked).await;
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^{IMAGE_FILES_PATH}/[0-9a-f]{{6}}\\.png$"
        )))
        .respond_with(Files {
            state: state.clone(),
        })
        .with_priority(priority)
        .named("inference image files")
        .mount(server)
        .await;
}

async fn mount_delivery(server: &MockServer, state: &Shared, priority: u8, delivery: Delivery) {
    Mock::given(method("POST"))
        .and(path(IMAGES_PATH))
        .respond_with(Generate {
            state: state.clone(),
            base: server.uri(),
            delivery,
        })
        .with_priority(priority)
        .named(format!("inference images ({delivery:?})"))
        .mount(server)
        .await;
}

impl FakeVultr {
    /// From now on images come as URLs on the fake's own host (with 201), whatever
    /// `response_format` asked.
    pub async fn answer_images_with_urls(&self) {
        mount_delivery(
            &self.server,
            &self.state,
            PRIORITY_VARIANT,
            Delivery::OwnUrls,
        )
        .await;
    }

    /// From now on images come as URLs on [`FOREIGN_IMAGE_HOST`].
    pub async fn answer_images_with_foreign_urls(&self) {
        mount_delivery(
            &self.server,
            &self.state,
            PRIORITY_VARIANT,
            Delivery::ForeignUrls,
        )
        .await;
    }
}
