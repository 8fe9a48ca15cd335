//! Tools over the account API: `list_subscriptions` and `get_subscription`.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::VultrServer;
use super::args::Parameters;
use super::error::ToolError;
use crate::keys::{KeyError, select};
use crate::vultr::account::{AccountClient, ModelUsage, Subscription, Usage};

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
    /// Subscription id or label.
    subscription: String,
}

#[derive(Serialize)]
struct SubscriptionList {
    subscriptions: Vec<SubscriptionView>,
}

#[derive(Serialize)]
struct SubscriptionDetail {
    subscription: SubscriptionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_error: Option<String>,
}

#[tool_router(router = subscriptions_router, vis = "pub(super)")]
impl VultrServer {
    /// List the account's Serverless Inference subscriptions: id, label, creation date, key hint (last 4 characters). Needs VULTR_API_KEY.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    async fn list_subscriptions(&self) -> CallToolResult {
        match self.list_subscriptions_inner().await {
            Ok(result) => result,
            Err(error) => self.failure(error),
        }
    }

    /// One subscription (by id or label) with its usage: tokens per model this and last month, prices, audio and image usage. Needs VULTR_API_KEY.
    #[tool(
        input_schema = super::args::input_schema::<GetSubscriptionArgs>(),
        annotations(read_only_hint = true, open_world_hint = true))]
    async fn get_subscription(
        &self,
        Parameters(args): Parameters<GetSubscriptionArgs>,
    ) -> CallToolResult {
        match self.get_subscription_inner(args).await {
            Ok(result) => result,
            Err(error) => self.failure(error),
        }
    }
}

impl VultrServer {
    fn account(&self) -> Result<&AccountClient, ToolError> {
        self.state.account.as_ref().ok_or(ToolError::NoAccountKey)
    }

    async fn list_subscriptions_inner(&self) -> Result<CallToolResult, ToolError> {
        let subscriptions = self.account()?.list_subscriptions().await?;
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
        Ok(self.success(
            text,
            SubscriptionList {
                subscriptions: views,
            },
        ))
    }

    async fn get_subscription_inner(
        &self,
        args: Result<GetSubscriptionArgs, super::args::InvalidArguments>,
    ) -> Result<CallToolResult, ToolError> {
        let args = args?;
        let account = self.account()?;
        let subscriptions = account.list_subscriptions().await?;
        let chosen = select(&subscriptions, Some(&args.subscription)).map_err(|e| match e {
            KeyError::NotFound { wanted, known } => {
                ToolError::UnknownSubscription { wanted, known }
            }
            other => ToolError::Key(other),
        })?;
        let mut view = SubscriptionView::from(chosen);
        if self.state.reveal_keys {
            view.api_key = chosen.api_key.as_ref().map(|k| k.expose().to_owned());
        }
        let mut text = format!("Subscription {}\n", view.line());
        let detail = match account.usage(&chosen.id).await {
            Ok(usage) => {
                render_usage(&mut text, &usage);
                SubscriptionDetail {
                    subscription: view,
                    usage: Some(usage),
                    usage_error: None,
                }
            }
            Err(error) => {
                let _ = write!(text, "Usage could not be read: {error}");
                SubscriptionDetail {
                    subscription: view,
                    usage: None,
                    usage_error: Some(error.to_string()),
                }
            }
        };
        if self.state.reveal_keys {
            return Ok(self.success_revealing_keys(text, detail));
        }
        Ok(self.success(text, detail))
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
    format!(
        "{}: {} input + {} output tokens (price per 1M tokens: input {}, output {})",
        row.model,
        number(row.input_tokens.clone()),
        number(row.output_tokens.clone()),
        number(row.input_price.clone()),
        number(row.output_price.clone())
    )
}

fn number(value: Option<Number>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |n| n.to_string())
}
