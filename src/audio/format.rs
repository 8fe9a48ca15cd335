//! Audio formats: the four speech is returned in, and the MIME types of the files a
//! transcription may upload (by extension, and the aliases clients send).

use std::fmt;

/// A format speech can be returned in (`pcm` is left out: headerless samples have no MIME
/// type and no stated sample rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// MPEG layer III.
    Mp3,
    /// Opus in an Ogg container (as OpenAI's is; unverified for Vultr).
    Opus,
    /// FLAC.
    Flac,
    /// RIFF/WAVE PCM.
    Wav,
}

impl AudioFormat {
    /// Every format, in the order they are offered.
    pub const ALL: [AudioFormat; 4] = [
        AudioFormat::Mp3,
        AudioFormat::Opus,
        AudioFormat::Flac,
        AudioFormat::Wav,
    ];

    /// The name sent as `response_format`.
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Flac => "flac",
            AudioFormat::Wav => "wav",
        }
    }

    /// The format named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<AudioFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Its MIME type (inferred from the format; Vultr states none).
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Opus => "audio/ogg",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Wav => "audio/wav",
        }
    }

    /// The file extension of a file in this format.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Opus => "ogg",
            other => other.name(),
        }
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// File extensions of audio and their MIME types, the first of each type being the one
/// given to a file that has none.
const EXTENSIONS: [(&str, &str); 10] = [
    ("wav", "audio/wav"),
    ("mp3", "audio/mpeg"),
    ("mpga", "audio/mpeg"),
    ("mpeg", "audio/mpeg"),
    ("flac", "audio/flac"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("m4a", "audio/mp4"),
    ("webm", "audio/webm"),
];

/// The MIME type of a file named `filename`, by its extension.
pub fn mime_of_filename(filename: &str) -> Option<&'static str> {
    let (_, extension) = filename.rsplit_once('.')?;
    EXTENSIONS
        .iter()
        .find(|(ext, _)| ext.eq_ignore_ascii_case(extension))
        .map(|(_, mime)| *mime)
}

/// The extension a file of MIME type `mime` is given.
pub fn extension_of_mime(mime: &str) -> Option<&'static str> {
    let mime = normalize_mime(mime);
    EXTENSIONS
        .iter()
        .find(|(_, m)| *m == mime)
        .map(|(ext, _)| *ext)
}

/// The extensions a file may have, for messages.
pub fn known_extensions() -> String {
    EXTENSIONS
        .iter()
        .map(|(ext, _)| *ext)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `mime` lower-cased, without parameters, its common aliases folded
/// (`audio/x-wav` is `audio/wav`, `audio/mp3` is `audio/mpeg`).
pub fn normalize_mime(mime: &str) -> String {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" | "audio/x-pn-wav" => "audio/wav".into(),
        "audio/mp3" | "audio/mpeg3" | "audio/x-mp3" | "audio/x-mpeg" => "audio/mpeg".into(),
        "audio/x-flac" => "audio/flac".into(),
        "audio/opus" => "audio/ogg".into(),
        "audio/x-m4a" | "audio/m4a" => "audio/mp4".into(),
        _ => essence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_have_their_mime_types_and_extensions() {
        let table: Vec<_> = AudioFormat::ALL
            .iter()
            .map(|f| (f.name(), f.mime(), f.extension()))
            .collect();
        assert_eq!(
            table,
            [
                ("mp3", "audio/mpeg", "mp3"),
                ("opus", "audio/ogg", "ogg"),
                ("flac", "audio/flac", "flac"),
                ("wav", "audio/wav", "wav")
            ]
        );
        assert_eq!(AudioFormat::parse(" WAV "), Some(AudioFormat::Wav));
        assert_eq!(AudioFormat::parse("pcm"), None);
    }

    #[test]
    fn files_are_typed_by_extension_and_aliases_fold() {
        assert_eq!(mime_of_filename("talk.WAV"), Some("audio/wav"));
        assert_eq!(mime_of_filename("a.b.mp3"), Some("audio/mpeg"));
        assert_eq!(mime_of_filename("noextension"), None);
        assert_eq!(mime_of_filename("notes.txt"), None);
        assert_eq!(normalize_mime("Audio/X-WAV; codecs=1"), "audio/wav");
        assert_eq!(normalize_mime("audio/mp3"), "audio/mpeg");
        assert_eq!(extension_of_mime("audio/x-wav"), Some("wav"));
        assert_eq!(extension_of_mime("audio/mpeg"), Some("mp3"));
        assert_eq!(extension_of_mime("video/mp4"), None);
    }
}
