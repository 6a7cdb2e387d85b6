//! One runner at a time: a short lease per piece of work (an on-demand job), taken by a
//! conditional write (`ports::Leases`) and renewed by its holder before each chunk. A second
//! runner (a duplicate announcement, an overlapping pass) finds it held and leaves the work to
//! the holder, answering its message without spending a receive count; it stages the intent's
//! announcement for when the lease would run out, so a holder that died (its lease expiring
//! after [`TTL`]) is resumed by whoever comes then, and a holder that finished leaves nothing
//! to do.

use crate::app::Deps;
use crate::ports::PortError;

/// How long a lease lasts unless renewed: the longest a Lambda runs, so a live holder never
/// loses it mid-chunk.
pub const TTL: chrono::Duration = chrono::Duration::minutes(15);

/// A lease this runner holds.
#[derive(Debug, Clone)]
pub struct Lease {
    key: String,
    holder: String,
}

impl Lease {
    /// Takes the lease on `key`, or None if another runner holds it.
    pub async fn take(deps: &Deps, key: String) -> Result<Option<Self>, PortError> {
        let lease = Self {
            key,
            holder: uuid::Uuid::new_v4().to_string(),
        };
        Ok(lease.renew(deps).await?.then_some(lease))
    }

    /// Renews the lease for another [`TTL`]; false if it was lost (expired and taken).
    pub async fn renew(&self, deps: &Deps) -> Result<bool, PortError> {
        let now = deps.clock.now();
        deps.leases
            .take(&self.key, &self.holder, now, now + TTL)
            .await
    }

    /// Ends the lease (best effort: it expires anyway).
    pub async fn release(self, deps: &Deps) {
        if let Err(e) = deps.leases.release(&self.key, &self.holder).await {
            tracing::warn!(lease = %self.key, error = %e, "could not release a lease; it expires");
        }
    }
}
