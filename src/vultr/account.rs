//! The Vultr account API: inference subscriptions and their usage.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::BaseUrl;
use super::error::{Api, VultrError};
use super::http::{Endpoint, VultrHttp};
use std::sync::Arc;

use crate::secret::{ApiKey, KnownKeys};

/// A client of the account API, holding the account key.
#[derive(Clone)]
pub struct AccountClient {
    http: VultrHttp,
    base: BaseUrl,
    key: ApiKey,
    timeout: Duration,
    known_keys: Arc<KnownKeys>,
}

/// An inference subscription. Its key is kept as an [`ApiKey`], so it cannot be serialized.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// The subscription's UUID.
    pub id: String,
    /// The user's label for it.
    pub label: String,
    /// When it was created, as Vultr reports it.
    pub date_created: Option<String>,
    /// Its inference API key, when the API returned one.
    pub api_key: Option<ApiKey>,
}

#[derive(Deserialize)]
struct RawSubscription {
    id: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
}

impl From<RawSubscription> for Subscription {
    fn from(raw: RawSubscription) -> Self {
        Self {
            id: raw.id,
            label: raw.label.unwrap_or_default(),
            date_created: raw.date_created,
            api_key: raw.api_key.and_then(ApiKey::new),
        }
    }
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    subscriptions: Vec<RawSubscription>,
}

#[derive(Deserialize)]
struct UsageResponse {
    #[serde(default)]
    usage: Usage,
}

/// Usage of one subscription; every section may be missing or null.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    /// Tokens per model, this month and last month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_by_model: Option<ChatByModel>,
    /// Text-to-speech characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioUsage>,
    /// Generated image megapixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageUsage>,
    /// Deprecated totals (older accounts); null fields are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<serde_json::Map<String, Value>>,
}

/// Per-model token usage by month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatByModel {
    /// This month.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub current_month: Vec<ModelUsage>,
    /// Last month.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub previous_month: Vec<ModelUsage>,
}

/// Tokens used with one model and its prices per 1M tokens, in US cents as Vultr reports
/// them (`55` is $0.55).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelUsage {
    /// Model id.
    pub model: String,
    /// Output tokens.
    #[serde(default, rename(deserialize = "tokens"))]
    pub output_tokens: Option<Number>,
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: Option<Number>,
    /// Price per 1M input tokens, in US cents.
    #[serde(default)]
    pub input_price: Option<Number>,
    /// Price per 1M output tokens, in US cents.
    #[serde(default)]
    pub output_price: Option<Number>,
}

/// Text-to-speech usage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AudioUsage {
    /// Characters with the HD model.
    #[serde(default)]
    pub tts_characters: Option<Number>,
    /// Characters with the basic model.
    #[serde(default)]
    pub tts_sm_characters: Option<Number>,
}

/// Image generation usage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageUsage {
    /// Megapixels with the full model.
    #[serde(default)]
    pub megapixels: Option<Number>,
    /// Megapixels with the small model.
    #[serde(default)]
    pub sm_megapixels: Option<Number>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

impl AccountClient {
    /// A client for the account API at `base`, authenticated with `key`, each request
    /// limited to `timeout`; every subscription key it reads is added to `known_keys`.
    pub fn new(
        http: VultrHttp,
        base: BaseUrl,
        key: ApiKey,
        timeout: Duration,
        known_keys: Arc<KnownKeys>,
    ) -> Self {
        known_keys.remember(&key);
        Self {
            http,
            base,
            key,
            timeout,
            known_keys,
        }
    }

    fn subscription(&self, raw: RawSubscription) -> Subscription {
        let subscription = Subscription::from(raw);
        if let Some(key) = &subscription.api_key {
            self.known_keys.remember(key);
        }
        subscription
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, VultrError> {
        let request = self
            .http
            .client()?
            .get(self.base.join(path))
            .bearer_auth(self.key.expose());
        self.http
            .send_json(
                Endpoint {
                    api: Api::Account,
                    base_url: self.base.as_str(),
                    timeout: self.timeout,
                },
                request,
            )
            .await
    }

    /// `GET /inference`: every inference subscription of the account.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, VultrError> {
        let list: ListResponse = self.get("/inference").await?;
        Ok(list
            .subscriptions
            .into_iter()
            .map(|raw| self.subscription(raw))
            .collect())
    }

    /// `GET /inference/{id}/usage`: the subscription's usage.
    pub async fn usage(&self, id: &str) -> Result<Usage, VultrError> {
        let got: Option<UsageResponse> = self
            .get(&format!("/inference/{}/usage", path_segment(id)))
            .await?;
        let mut usage = got.map(|u| u.usage).unwrap_or_default();
        if let Some(chat) = &mut usage.chat {
            chat.retain(|_, v| !v.is_null());
        }
        Ok(usage)
    }
}

/// Keeps an id from escaping its path segment.
fn path_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_parses_the_current_shape() {
        let body = r#"{"usage":{"chat_by_model":{"current_month":[{"model":"m","tokens":10,"input_tokens":5,"output_price":120,"input_price":30}],"previous_month":null},
            "audio":{"tts_characters":1,"tts_sm_characters":2},"image":{"megapixels":21.35,"sm_megapixels":6.55},
            "chat":{"completion_tokens":3,"current_tokens":null}}}"#;
        let usage: UsageResponse = serde_json::from_str(body).unwrap();
        let by_model = usage.usage.chat_by_model.unwrap();
        assert_eq!(
            by_model.current_month[0].output_tokens,
            Some(Number::from(10))
        );
        assert!(by_model.previous_month.is_empty());
        assert_eq!(
            usage
                .usage
                .image
                .unwrap()
                .megapixels
                .and_then(|n| n.as_f64()),
            Some(21.35)
        );
    }

    #[test]
    fn usage_parses_the_old_shape_and_empty_bodies() {
        let body = r#"{"usage":{"chat":{"current_tokens":654732,"monthly_allotment":50000000,"overage":0},"audio":{"tts_characters":5678,"tts_sm_characters":1234}}}"#;
        let usage: UsageResponse = serde_json::from_str(body).unwrap();
        assert!(usage.usage.chat_by_model.is_none());
        assert!(usage.usage.chat.is_some());
        let empty: UsageResponse = serde_json::from_str("{}").unwrap();
        assert!(empty.usage.audio.is_none());
    }

    #[test]
    fn ids_stay_inside_their_path_segment() {
        assert_eq!(path_segment("../../account"), "....account");
        assert_eq!(path_segment("999c4ed0-f2e4"), "999c4ed0-f2e4");
    }
}
