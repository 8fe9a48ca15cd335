//! Where a call's progress goes: `notifications/progress` to a client that asked for it
//! with a `progressToken` (until it holds a task handle), and, for a call that may become a
//! task, the task's status message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};

use crate::chat::{ProgressSink, ProgressUpdate};
use crate::tasks::StatusLine;

/// The progress of one call.
#[derive(Clone)]
pub(super) struct CallProgress {
    /// The client that asked for progress, and its token.
    peer: Option<(Peer<RoleServer>, ProgressToken)>,
    /// The status message of the task the call may become.
    status: Option<StatusLine>,
    /// False once the caller holds a task handle: its request is answered.
    forward: Arc<AtomicBool>,
}

impl CallProgress {
    /// Progress to the client of `context` when it asked for it; `None` when nobody listens.
    pub(super) fn of(context: &RequestContext<RoleServer>) -> Option<CallProgress> {
        let token = context.meta.get_progress_token()?;
        Some(CallProgress {
            peer: Some((context.peer.clone(), token)),
            status: None,
            forward: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Progress of a call that may become a task: to the client (when it asked for it)
    /// while it waits, and always into `status`.
    pub(super) fn of_task(
        context: &RequestContext<RoleServer>,
        status: StatusLine,
    ) -> CallProgress {
        let mut progress = Self::of(context).unwrap_or_else(|| CallProgress {
            peer: None,
            status: None,
            forward: Arc::new(AtomicBool::new(true)),
        });
        progress.status = Some(status);
        progress
    }

    /// Stops sending progress to the client (it now holds a task handle).
    pub(super) fn stop_forwarding(&self) {
        self.forward.store(false, Ordering::Relaxed);
    }
}

impl ProgressSink for CallProgress {
    async fn send(self, update: ProgressUpdate) {
        if let Some(status) = &self.status {
            status.set(format!("running: {}", update.message));
        }
        if let Some((peer, token)) = self.peer
            && self.forward.load(Ordering::Relaxed)
        {
            let param = ProgressNotificationParam::new(token, update.tokens as f64)
                .with_message(update.message);
            if let Err(error) = peer.notify_progress(param).await {
                tracing::debug!(%error, "progress notification not sent");
            }
        }
    }
}
