//! Tools over the account API: `list_subscriptions` and `get_subscription`.

use std::fmt::Write as _;

use std::sync::{Arc, LazyLock};

use rmcp::model::{CallToolResult, JsonObject};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry};
use crate::setting;
use crate::settings::Toolset;
use crate::subscriptions::SubscriptionDetail;
use crate::vultr::account::{AudioUsage, ImageUsage, ModelUsage, Subscription, Usage};

/// A subscription as shown to clients: the key only as a hint.
#[derive(Debug, Serialize)]
struct SubscriptionView {
    id: String,
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_created: Option<String>,
    key_hint: Option<String>,
    /// The full key, only when VULTR_MCP_REVEAL_KEYS is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.clone(),
            label: s.label.clone(),
            date_created: s.date_created.clone(),
            key_hint: s.api_key.as_ref().map(|k| k.hint()),
            api_key: None,
        }
    }
}

impl SubscriptionView {
    fn line(&self) -> String {
        let mut line = format!(
            "{} (id {})",
            if self.label.is_empty() {
                "(no label)"
            } else {
                &self.label
            },
            self.id
        );
        if let Some(created) = &self.date_created {
            let _ = write!(line, ", created {created}");
        }
        match (&self.api_key, &self.key_hint) {
            (Some(key), _) => {
                let _ = write!(line, ", key {key}");
            }
            (None, Some(hint)) => {
                let _ = write!(line, ", key {hint}");
            }
            (None, None) => {}
        }
        line
    }
}

/// Arguments of `get_subscription`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetSubscriptionArgs {
    /// Subscription id or label; list_subscriptions shows them.
    subscription: String,
}

#[derive(Serialize)]
struct SubscriptionList {
    subscriptions: Vec<SubscriptionView>,
}

#[derive(Serialize)]
struct SubscriptionShown<'a> {
    subscription: SubscriptionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_error: Option<String>,
}

/// Usage as shown to clients: prices in USD per 1M tokens, the unit list_models uses.
#[derive(Serialize)]
struct UsageView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_by_model: Option<ChatByModelView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<&'a AudioUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a ImageUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat: Option<&'a Map<String, Value>>,
}

#[derive(Serialize)]
struct ChatByModelView<'a> {
    current_month: Vec<ModelUsageView<'a>>,
    previous_month: Vec<ModelUsageView<'a>>,
}

/// One model's usage, its prices converted from Vultr's cents to USD.
#[derive(Serialize)]
struct ModelUsageView<'a> {
    model: &'a str,
    input_tokens: Option<&'a Number>,
    output_tokens: Option<&'a Number>,
    input_usd_per_1m: Option<f64>,
    output_usd_per_1m: Option<f64>,
}

impl<'a> From<&'a Usage> for UsageView<'a> {
    fn from(usage: &'a Usage) -> Self {
        let rows = |rows: &'a [ModelUsage]| rows.iter().map(ModelUsageView::from).collect();
        Self {
            chat_by_model: usage.chat_by_model.as_ref().map(|by| ChatByModelView {
                current_month: rows(&by.current_month),
                previous_month: rows(&by.previous_month),
            }),
            audio: usage.audio.as_ref(),
            image: usage.image.as_ref(),
            chat: usage.chat.as_ref(),
        }
    }
}

impl<'a> From<&'a ModelUsage> for ModelUsageView<'a> {
    fn from(row: &'a ModelUsage) -> Self {
        Self {
            model: &row.model,
            input_tokens: row.input_tokens.as_ref(),
            output_tokens: row.output_tokens.as_ref(),
            input_usd_per_1m: row.input_price.as_ref().and_then(usd_of_cents),
            output_usd_per_1m: row.output_price.as_ref().and_then(usd_of_cents),
        }
    }
}

/// US cents as dollars, rounded to a millionth of a cent's worth of noise.
fn usd_of_cents(cents: &Number) -> Option<f64> {
    let usd = cents.as_f64()? / 100.0;
    Some((usd * 1e8).round() / 1e8)
}

/// The `list_subscriptions` entry.
pub(super) fn list_subscriptions() -> ToolEntry {
    ToolEntry {
        name: "list_subscriptions",
        toolset: Toolset::Core,
        description: format!(
            "List the account's Serverless Inference subscriptions: id, label, creation date, key hint (last 4 characters). Needs {}.",
            setting::API_KEY
        ),
        input_schema: no_arguments,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: format!(
            "- list_subscriptions: the account's inference subscriptions (needs {}). Keys are never shown, only their last 4 characters.\n",
            setting::API_KEY
        ),
        handler: |server, _call| Box::pin(server.list_subscriptions()),
    }
}

/// The `get_subscription` entry.
pub(super) fn get_subscription() -> ToolEntry {
    ToolEntry {
        name: "get_subscription",
        toolset: Toolset::Core,
        description: format!(
            "One subscription (by id or label) with its usage: tokens per model this and last month, prices, audio and image usage. Needs {}.",
            setting::API_KEY
        ),
        input_schema: input_schema::<GetSubscriptionArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- get_subscription: one subscription and its usage this and last month.\n"
            .to_owned(),
        handler: |server, call| Box::pin(server.get_subscription(call)),
    }
}

/// The input schema of a tool without arguments.
fn no_arguments() -> Arc<JsonObject> {
    static SCHEMA: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
        let mut schema = JsonObject::new();
        schema.insert("type".to_owned(), Value::from("object"));
        schema.insert("properties".to_owned(), Value::Object(Map::new()));
        Arc::new(schema)
    });
    SCHEMA.clone()
}

impl VultrServer {
    async fn list_subscriptions(&self) -> CallToolResult {
        let listed = self.app.subscriptions.list().await.map_err(ToolError::from);
        self.respond(listed.map(|subscriptions| {
            let views: Vec<SubscriptionView> =
                subscriptions.iter().map(SubscriptionView::from).collect();
            let text = if views.is_empty() {
                "No Serverless Inference subscriptions on this account. Create one in the Vultr customer portal (Products > Serverless Inference).".to_owned()
            } else {
                let mut text = format!("{} inference subscription(s):\n", views.len());
                for view in &views {
                    let _ = writeln!(text, "- {}", view.line());
                }
                text
            };
            self.success(
                text,
                SubscriptionList {
                    subscriptions: views,
                },
            )
        }))
    }

    async fn get_subscription(&self, call: Call) -> CallToolResult {
        let detail = async {
            let args = decode::<GetSubscriptionArgs>(call.arguments)?;
            Ok::<_, ToolError>(self.app.subscriptions.detail(&args.subscription).await?)
        };
        self.respond(detail.await.map(|detail| self.render_detail(&detail)))
    }

    fn render_detail(&self, detail: &SubscriptionDetail) -> CallToolResult {
        let revealing = self.app.subscriptions.reveal_keys();
        let chosen = &detail.subscription;
        let mut view = SubscriptionView::from(chosen);
        if revealing {
            view.api_key = chosen.api_key.as_ref().map(|k| k.expose().to_owned());
        }
        let mut text = format!("Subscription {}\n", view.line());
        let shown = match &detail.usage {
            Ok(usage) => {
                render_usage(&mut text, usage);
                SubscriptionShown {
                    subscription: view,
                    usage: Some(UsageView::from(usage)),
                    usage_error: None,
                }
            }
            Err(error) => {
                let _ = write!(text, "Usage could not be read: {error}");
                SubscriptionShown {
                    subscription: view,
                    usage: None,
                    usage_error: Some(error.to_string()),
                }
            }
        };
        if revealing {
            return self.success_revealing_keys(text, shown);
        }
        self.success(text, shown)
    }
}

fn render_usage(text: &mut String, usage: &Usage) {
    let mut any = false;
    if let Some(by_model) = &usage.chat_by_model {
        for (title, rows) in [
            ("This month", &by_model.current_month),
            ("Last month", &by_model.previous_month),
        ] {
            if rows.is_empty() {
                let _ = writeln!(text, "{title}: no chat usage");
            } else {
                let _ = writeln!(text, "{title}:");
                for row in rows {
                    let _ = writeln!(text, "- {}", model_usage_line(row));
                }
            }
            any = true;
        }
    }
    if let Some(audio) = &usage.audio {
        let _ = writeln!(
            text,
            "Text-to-speech: {} characters (HD), {} characters (basic)",
            number(audio.tts_characters.clone()),
            number(audio.tts_sm_characters.clone())
        );
        any = true;
    }
    if let Some(image) = &usage.image {
        let _ = writeln!(
            text,
            "Images: {} megapixels, {} megapixels (small model)",
            number(image.megapixels.clone()),
            number(image.sm_megapixels.clone())
        );
        any = true;
    }
    if let Some(chat) = usage.chat.as_ref().filter(|c| !c.is_empty()) {
        let fields: Vec<String> = chat.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(text, "Totals (legacy): {}", fields.join(", "));
        any = true;
    }
    if !any {
        let _ = writeln!(text, "No usage reported.");
    }
}

fn model_usage_line(row: &ModelUsage) -> String {
    let usd = |cents: &Option<Number>| {
        cents
            .as_ref()
            .and_then(usd_of_cents)
            .map_or_else(|| "n/a".to_owned(), |usd| format!("${usd}"))
    };
    format!(
        "{}: {} input + {} output tokens ({}/{} per 1M input/output tokens)",
        row.model,
        number(row.input_tokens.clone()),
        number(row.output_tokens.clone()),
        usd(&row.input_price),
        usd(&row.output_price)
    )
}

fn number(value: Option<Number>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |n| n.to_string())
}
