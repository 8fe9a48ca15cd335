//! The duration of a WAV file, read from its RIFF header: the only audio format whose
//! length this server knows without decoding.

/// Seconds of audio in `bytes` when they are a RIFF/WAVE file with a `fmt ` chunk before
/// its `data` chunk; `None` for anything else. The header's size is believed (it is what
/// a cap must judge), except the 0 or `0xFFFFFFFF` of a streamed WAV: then the bytes present count.
pub fn duration_seconds(bytes: &[u8]) -> Option<f64> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    let mut byte_rate: Option<u32> = None;
    while at.checked_add(8)? <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let fmt = bytes.get(body..body.checked_add(16)?)?;
                byte_rate = Some(u32::from_le_bytes(fmt[8..12].try_into().ok()?));
            }
            b"data" => {
                let rate = f64::from(byte_rate.filter(|r| *r > 0)?);
                let size = match size as u32 {
                    0 | u32::MAX => bytes.len() - body,
                    _ => size,
                };
                return Some(size as f64 / rate);
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = body.checked_add(size)?.checked_add(size % 2)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV at `rate` Hz with `samples` samples, an extra chunk before `data`,
    /// and `data_size` written as given.
    fn wav(rate: u32, samples: usize, data_size: Option<u32>) -> Vec<u8> {
        let data_len = samples * 2;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&((4 + 24 + 13 + 1 + 8 + data_len) as u32).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"LIST");
        out.extend_from_slice(&5u32.to_le_bytes());
        out.extend_from_slice(b"odd!!\0");
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_size.unwrap_or(data_len as u32).to_le_bytes());
        out.resize(out.len() + data_len, 0);
        out
    }

    #[test]
    fn the_duration_is_the_data_size_over_the_byte_rate() {
        assert_eq!(duration_seconds(&wav(8000, 16000, None)), Some(2.0));
        assert_eq!(duration_seconds(&wav(24000, 12000, None)), Some(0.5));
        assert_eq!(
            duration_seconds(&wav(8000, 8000, Some(u32::MAX))),
            Some(1.0),
            "a streamed WAV's size counts the bytes present"
        );
    }

    #[test]
    fn anything_else_has_no_known_duration() {
        assert_eq!(duration_seconds(b"ID3\x04\0\0\0\0\0\0"), None);
        assert_eq!(duration_seconds(b""), None);
        let mut truncated = wav(8000, 10, None);
        truncated.truncate(30);
        assert_eq!(duration_seconds(&truncated), None);
        let mut no_rate = wav(0, 10, None);
        no_rate[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(duration_seconds(&no_rate), None);
    }
}
