//! The model catalog, fetched on first use and kept for a few minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::secret::ApiKey;
use crate::vultr::error::VultrError;
use crate::vultr::inference::InferenceClient;
use crate::vultr::models::Model;

/// How long a fetched catalog is trusted.
pub const CATALOG_TTL: Duration = Duration::from_secs(300);

/// A cached view of `GET /v1/models`.
pub struct ModelCatalog {
    client: InferenceClient,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<Vec<Model>>)>>,
}

impl ModelCatalog {
    /// A catalog read through `client`, kept for `ttl`.
    pub fn new(client: InferenceClient, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The models, from the cache when it is fresh.
    pub async fn models(&self, key: Option<&ApiKey>) -> Result<Arc<Vec<Model>>, VultrError> {
        // Held across the fetch so concurrent callers share one request.
        let mut cached = self.cached.lock().await;
        if let Some((fetched, models)) = cached.as_ref()
            && fetched.elapsed() < self.ttl
        {
            return Ok(models.clone());
        }
        let models = Arc::new(self.client.models(key).await?);
        *cached = Some((Instant::now(), models.clone()));
        Ok(models)
    }
}
