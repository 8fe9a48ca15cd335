//! Checks 2 to 5, Vultr: the account key (listing subscriptions), which subscription and
//! inference key calls would use, the inference API's catalog, and (only with `--live`)
//! one small paid chat completion. Each uses the server's own clients.

use std::sync::Arc;
use std::time::Instant;

use super::{Check, Options, Status};
use crate::keys::{self, KeyError};
use crate::secret::{ApiKey, KnownKeys};
use crate::setting;
use crate::settings::Settings;
use crate::vultr::account::{AccountClient, Subscription};
use crate::vultr::chat::{ChatOptions, ChatRequest, Message};
use crate::vultr::error::{Api, VultrError};
use crate::vultr::http::VultrHttp;
use crate::vultr::inference::InferenceClient;
use crate::vultr::models::Model;

/// What to do when no HTTPS client could be made (no CA certificates were found).
const NO_CA_FIX: &str = "install the system's CA certificates (e.g. the ca-certificates package), or set SSL_CERT_FILE to a CA bundle file";

const ACCOUNT: &str = "account key";
const SUBSCRIPTION: &str = "subscription";
const INFERENCE: &str = "inference API";
const LIVE: &str = "live chat";

/// Where a refused account key is replaced.
const API_KEYS_PAGE: &str = "https://my.vultr.com/settings/#settingsapi";

/// The most tokens the live check asks for.
const LIVE_MAX_TOKENS: u32 = 8;

/// The four checks, in order.
pub(super) async fn checks(
    settings: &Settings,
    known: Arc<KnownKeys>,
    options: Options,
) -> Vec<Check> {
    let vultr = &settings.vultr;
    let http = VultrHttp::new(settings.limits.http());
    let account = vultr.api_key.clone().map(|key| {
        AccountClient::new(
            http.clone(),
            vultr.api_base_url.clone(),
            key,
            settings.limits.account_timeout,
            known,
        )
    });
    let (account_check, subscriptions) = account_key(settings, account.as_ref()).await;
    let (subscription_check, key) = subscription(settings, &account_check, subscriptions);
    let inference = InferenceClient::new(
        http,
        vultr.inference_base_url.clone(),
        settings.limits.account_timeout,
        settings.limits.chat_timeout,
    );
    let (catalog_check, catalog) = catalog(&inference, key.as_ref(), &vultr.fallback_models).await;
    let live_check = live(
        settings,
        options,
        &inference,
        key.as_ref()
            .filter(|_| subscription_check.status != Status::Fail),
        catalog.as_deref(),
    )
    .await;
    let subscription_check = if vultr.inference_api_key.is_some()
        && live_check.status == Status::Ok
        && let Some(key) = &key
    {
        Check::ok(
            SUBSCRIPTION,
            format!(
                "the inference key {} ({}) is configured and verified by the live chat",
                key.hint(),
                setting::INFERENCE_API_KEY
            ),
        )
    } else {
        subscription_check
    };
    vec![account_check, subscription_check, catalog_check, live_check]
}

/// Check 2: the account key lists the subscriptions.
async fn account_key(
    settings: &Settings,
    account: Option<&AccountClient>,
) -> (Check, Option<Vec<Subscription>>) {
    let Some(account) = account else {
        let check = if settings.vultr.inference_api_key.is_some() {
            Check::warn(
                ACCOUNT,
                format!(
                    "{} is not set; the inference key is used as given",
                    setting::API_KEY
                ),
                format!(
                    "set {} to an account API key to use the subscription tools (list_subscriptions, get_subscription)",
                    setting::API_KEY
                ),
            )
        } else {
            Check::fail(
                ACCOUNT,
                format!(
                    "neither {} nor {} is set: no call can reach Vultr",
                    setting::API_KEY,
                    setting::INFERENCE_API_KEY
                ),
                format!(
                    "set {} to your account API key (made at {API_KEYS_PAGE}), or {} to a subscription's inference key",
                    setting::API_KEY,
                    setting::INFERENCE_API_KEY
                ),
            )
        };
        return (check, None);
    };
    match account.list_subscriptions().await {
        Ok(subscriptions) => (
            Check::ok(
                ACCOUNT,
                format!(
                    "accepted by {}: {} inference subscription(s)",
                    host(settings.vultr.api_base_url.as_str()),
                    subscriptions.len()
                ),
            ),
            Some(subscriptions),
        ),
        Err(error) => (account_failure(settings, &error), None),
    }
}

/// A failed subscription listing, said for what it most likely means.
fn account_failure(settings: &Settings, error: &VultrError) -> Check {
    let message = match error {
        VultrError::Status { message, .. } => message.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let about_ip = message.to_ascii_lowercase().contains("ip address");
    match error.status() {
        Some(401 | 403) if about_ip => Check::fail(
            ACCOUNT,
            format!("the account API refused this machine's IP address: {message}"),
            format!(
                "add this machine's public IP address to the key's access control list (Account > API > Access Control at {API_KEYS_PAGE}), or run from an allowed address"
            ),
        ),
        Some(401) => Check::fail(
            ACCOUNT,
            format!("key refused (HTTP 401): {}", or_nothing(&message)),
            format!(
                "make a new account API key at {API_KEYS_PAGE} and set {} to it",
                setting::API_KEY
            ),
        ),
        Some(403) => Check::fail(
            ACCOUNT,
            format!(
                "the account API answered HTTP 403 (forbidden): {}; an IP address not on the key's access control list is the usual cause",
                or_nothing(&message)
            ),
            format!(
                "add this machine's public IP address to the key's access control list at {API_KEYS_PAGE} (or allow all addresses), and check the key's permissions"
            ),
        ),
        _ => Check::fail(
            ACCOUNT,
            format!(
                "could not list subscriptions at {}: {error}",
                host(settings.vultr.api_base_url.as_str())
            ),
            match error {
                VultrError::Unreachable { .. } | VultrError::Timeout { .. } => format!(
                    "check this machine's network connection to {} (and {}, if you set it)",
                    host(settings.vultr.api_base_url.as_str()),
                    Api::Account.base_url_var()
                ),
                VultrError::NoHttpsClient { .. } => NO_CA_FIX.to_owned(),
                _ => "try again in a minute; if it persists, check https://status.vultr.com"
                    .to_owned(),
            },
        ),
    }
}

/// Check 3: which subscription and inference key calls would use.
fn subscription(
    settings: &Settings,
    account_check: &Check,
    subscriptions: Option<Vec<Subscription>>,
) -> (Check, Option<ApiKey>) {
    let vultr = &settings.vultr;
    if let Some(key) = &vultr.inference_api_key {
        // The catalog is public, so nothing free proves the key: say so.
        return (
            Check::warn(
                SUBSCRIPTION,
                format!(
                    "the inference key {} ({}) is configured, not verified",
                    key.hint(),
                    setting::INFERENCE_API_KEY
                ),
                "run `vultr-inference-mcp doctor --live` to verify it with one paid request",
            ),
            Some(key.clone()),
        );
    }
    let Some(subscriptions) = subscriptions else {
        return (Check::needs(SUBSCRIPTION, &account_check.name), None);
    };
    let chosen =
        keys::select(&subscriptions, vultr.inference_subscription.as_deref()).and_then(|chosen| {
            match &chosen.api_key {
                Some(key) => Ok((chosen, key.clone())),
                None => Err(KeyError::NoKeyInSubscription(keys::describe(chosen))),
            }
        });
    match chosen {
        Ok((chosen, key)) => (
            Check::ok(
                SUBSCRIPTION,
                format!(
                    "{}, inference key {} (found through the account API)",
                    keys::describe(chosen),
                    key.hint()
                ),
            ),
            Some(key),
        ),
        Err(error) => (
            Check::fail(SUBSCRIPTION, error.to_string(), subscription_fix(&error)),
            None,
        ),
    }
}

/// What to do about a subscription that cannot be chosen.
fn subscription_fix(error: &KeyError) -> String {
    match error {
        KeyError::NoSubscriptions => "create a Serverless Inference subscription in the Vultr customer portal (Products > Serverless Inference)".to_owned(),
        KeyError::Ambiguous(_) | KeyError::NotFound { .. } => format!(
            "set {} to the id or label of the subscription to use",
            setting::INFERENCE_SUBSCRIPTION
        ),
        _ => format!(
            "set {} to the subscription's inference key",
            setting::INFERENCE_API_KEY
        ),
    }
}

/// Check 4: the catalog is reachable; how many models, how many take tools; and every
/// fallback model is a chat model in it.
async fn catalog(
    inference: &InferenceClient,
    key: Option<&ApiKey>,
    fallbacks: &[String],
) -> (Check, Option<Vec<Model>>) {
    match inference.models(key).await {
        Ok(models) => {
            let chat = models.iter().filter(|m| m.is_chat()).count();
            let tools = models
                .iter()
                .filter(|m| m.is_chat() && m.tools == Some(true))
                .count();
            let unusable: Vec<&str> = fallbacks
                .iter()
                .filter(|id| !models.iter().any(|m| m.id == **id && m.is_chat()))
                .map(String::as_str)
                .collect();
            let check = if chat == 0 {
                Check::warn(
                    INFERENCE,
                    format!("the catalog lists {} model(s), none for chat", models.len()),
                    "chat_completion has no model to run on; check the inference base URL",
                )
            } else if !unusable.is_empty() {
                Check::warn(
                    INFERENCE,
                    format!(
                        "{} names {} that the catalog does not list as chat models; calls falling back would pass over them",
                        setting::FALLBACK_MODELS,
                        unusable.join(", ")
                    ),
                    format!(
                        "set {} to chat model ids from list_models",
                        setting::FALLBACK_MODELS
                    ),
                )
            } else {
                Check::ok(
                    INFERENCE,
                    format!(
                        "the catalog lists {} model(s): {chat} for chat, {tools} of them with tool calling",
                        models.len()
                    ),
                )
            };
            (check, Some(models))
        }
        Err(error) => (
            Check::fail(
                INFERENCE,
                format!("could not read the model catalog: {error}"),
                match error {
                    VultrError::Unreachable { .. } | VultrError::Timeout { .. } => format!(
                        "check this machine's network connection to the inference API (and {}, if you set it)",
                        setting::INFERENCE_BASE_URL
                    ),
                    VultrError::NoHttpsClient { .. } => NO_CA_FIX.to_owned(),
                    _ => "try again in a minute; if it persists, check https://status.vultr.com"
                        .to_owned(),
                },
            ),
            None,
        ),
    }
}

/// Check 5: one small chat completion, only when asked (it costs money).
async fn live(
    settings: &Settings,
    options: Options,
    inference: &InferenceClient,
    key: Option<&ApiKey>,
    catalog: Option<&[Model]>,
) -> Check {
    if !options.live {
        return Check::skipped(
            LIVE,
            "skipped: a chat completion costs money, so it runs only when asked",
            "run `vultr-inference-mcp doctor --live` to make one small paid request",
        );
    }
    let Some(key) = key else {
        return Check::needs(LIVE, SUBSCRIPTION);
    };
    let Some(catalog) = catalog else {
        return Check::needs(LIVE, INFERENCE);
    };
    let model = match &settings.vultr.default_model {
        Some(model) => model.clone(),
        None => match catalog.iter().find(|m| m.is_chat() && m.ready) {
            Some(model) => model.id.clone(),
            None => {
                return Check::fail(
                    LIVE,
                    "no chat model in the catalog to ask",
                    format!("set {} to a chat model's id", setting::DEFAULT_MODEL),
                );
            }
        },
    };
    let message: Message =
        match serde_json::from_value(serde_json::json!({"role": "user", "content": "Say OK."})) {
            Ok(message) => message,
            Err(error) => return Check::fail(LIVE, error.to_string(), ""),
        };
    let request = ChatRequest {
        model: model.clone(),
        messages: vec![message],
        options: ChatOptions {
            max_tokens: Some(LIVE_MAX_TOKENS),
            ..ChatOptions::default()
        },
    };
    let started = Instant::now();
    match inference.chat(key, &request).await {
        Ok(reply) => Check::ok(
            LIVE,
            format!(
                "made one paid request: {model} answered in {} ms{}",
                started.elapsed().as_millis(),
                reply
                    .usage
                    .and_then(|usage| usage.total_tokens)
                    .map(|tokens| format!(", {tokens} tokens"))
                    .unwrap_or_default()
            ),
        ),
        Err(error) => Check::fail(
            LIVE,
            format!("made one paid request to {model}, which failed: {error}"),
            format!(
                "check that {model} is in the catalog and that the subscription may use it ({})",
                setting::DEFAULT_MODEL
            ),
        ),
    }
}

/// The host (and port) of a base URL, as messages name it.
fn host(base_url: &str) -> String {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| {
            url.host_str().map(|host| match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            })
        })
        .unwrap_or_else(|| base_url.to_owned())
}

/// `text`, or `no message` when it is empty.
fn or_nothing(text: &str) -> &str {
    if text.is_empty() { "no message" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_with_their_port() {
        assert_eq!(host("https://api.vultr.com/v2"), "api.vultr.com");
        assert_eq!(host("http://127.0.0.1:9/v2"), "127.0.0.1:9");
    }
}
