//! One pull of one network: fetch every page, parse it off the async threads, and upsert.
//!
//! A single-page feed is upserted straight from its page. A multi-page feed is staged page by
//! page in the store (`Staging`) and applied only when the last page has arrived, so memory holds
//! one page whatever the feed's length, and a pull that fails half-way (HTTP error, timeout,
//! malformed page, a fault) has ingested nothing and deleted nothing.

use std::sync::Arc;
use std::time::Duration;

use super::fetch::Fetcher;
use crate::clock::SharedClock;
use crate::config::NetworkSettings;
use crate::domain::network::PullSummary;
use crate::domain::voucher::Offer;
use crate::feeds::{self, PageCtx, PageRef, Source};
use crate::store::Store;
use crate::store::vouchers::Upserted;

/// Offers per upsert transaction.
pub const CHUNK: usize = 1000;
/// A feed with more pages than this is treated as broken (a paging loop).
pub const MAX_PAGES: u32 = 10_000;

/// Everything a pull needs; shared by a network actor and its pulls (and the ingest bench).
#[derive(Clone)]
pub struct Puller {
    pub store: Store,
    pub clock: SharedClock,
    pub fetcher: Fetcher,
    pub retention: chrono::Duration,
}

/// A failed pull: what it read before failing, and why it failed.
#[derive(Debug)]
pub struct PullFailure {
    pub summary: PullSummary,
    pub error: String,
}

impl Puller {
    pub async fn pull(&self, network: &NetworkSettings) -> Result<PullSummary, PullFailure> {
        let mut summary = PullSummary {
            started_at: Some(self.clock.now()),
            ..PullSummary::default()
        };
        let name = network.name.clone();
        let result = self.pull_pages(network, &mut summary).await;
        if result.is_err() || summary.pages > 1 {
            let store_name = name.clone();
            if let Err(e) = self
                .store
                .write_unflushed(move |s| s.staging().clear(&store_name))
                .await
            {
                tracing::warn!(network = %name, error = %e, "clearing staged pages failed");
            }
        }
        summary.finished_at = Some(self.clock.now());
        match result {
            Ok(()) => {
                summary.ok = true;
                Ok(summary)
            }
            Err(error) => {
                summary.ok = false;
                summary.inserted = 0;
                summary.updated = 0;
                summary.unchanged = 0;
                summary.errors.insert(0, error.clone());
                Err(PullFailure { summary, error })
            }
        }
    }

    async fn pull_pages(
        &self,
        network: &NetworkSettings,
        summary: &mut PullSummary,
    ) -> Result<(), String> {
        let source = Arc::new(network.source());
        let is_file = network.file_path().is_some();
        let timeout = Duration::from_secs(network.timeout_s);
        let name = network.name.clone();
        {
            let name = name.clone();
            self.store
                .write_unflushed(move |s| s.staging().clear(&name))
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut page_ref = PageRef::Number(1);
        let mut ctx = PageCtx {
            number: 1,
            rows_before: 0,
        };
        let mut staged = 0u64;
        loop {
            let request = feeds::request(&source, &page_ref);
            let bytes = self
                .fetcher
                .fetch(&request, timeout)
                .await
                .map_err(|e| format!("page {}: {e}", ctx.number))?;
            let page = parse_off_thread(source.clone(), ctx, bytes)
                .await
                .map_err(|e| format!("page {}: {e}", ctx.number))?;
            summary.pages += 1;
            summary.fetched += page.rows() as u64;
            for e in &page.rejected {
                summary.reject(e);
            }
            let next = if is_file { None } else { page.next.clone() };
            if summary.pages == 1 && next.is_none() {
                // The whole feed is this page: no staging needed.
                let done = self.upsert(&name, page.offers).await?;
                add(summary, done);
                return Ok(());
            }
            let count = page.offers.len() as u64;
            let offers = page.offers;
            let n = name.clone();
            self.store
                .write_unflushed(move |s| s.staging().stage(&n, staged, &offers))
                .await
                .map_err(|e| e.to_string())?;
            staged += count;
            match next {
                None => break,
                Some(next) => {
                    if next == page_ref {
                        return Err(format!("page {} names itself as the next page", ctx.number));
                    }
                    if summary.pages >= MAX_PAGES {
                        return Err(format!("more than {MAX_PAGES} pages"));
                    }
                    ctx.rows_before += page.rejected.len() as u64 + count;
                    ctx.number += 1;
                    page_ref = next;
                }
            }
        }
        // Every page arrived: apply what was staged, a chunk at a time.
        let mut from = 0u64;
        loop {
            let n = name.clone();
            let chunk = self
                .store
                .run(move |s| s.staging().read(&n, from, CHUNK))
                .await
                .map_err(|e| e.to_string())?;
            let Some((last, _)) = chunk.last() else { break };
            from = last + 1;
            let full = chunk.len() == CHUNK;
            let offers: Vec<Offer> = chunk.into_iter().map(|(_, o)| o).collect();
            let done = self.upsert(&name, offers).await?;
            add(summary, done);
            if !full {
                break;
            }
        }
        Ok(())
    }

    async fn upsert(&self, network: &str, offers: Vec<Offer>) -> Result<Upserted, String> {
        let mut total = Upserted::default();
        let offers = Arc::new(offers);
        for start in (0..offers.len()).step_by(CHUNK) {
            let (offers, network) = (offers.clone(), network.to_owned());
            let (now, retention) = (self.clock.now(), self.retention);
            let end = (start + CHUNK).min(offers.len());
            let done = self
                .store
                .write(move |s| {
                    let chunk = offers.get(start..end).unwrap_or_default();
                    s.vouchers().upsert(&network, chunk, now, retention)
                })
                .await
                .map_err(|e| format!("storing vouchers: {e}"))?;
            total += done;
        }
        Ok(total)
    }
}

fn add(summary: &mut PullSummary, done: Upserted) {
    summary.inserted += done.inserted;
    summary.updated += done.updated;
    summary.unchanged += done.unchanged;
}

async fn parse_off_thread(
    source: Arc<Source>,
    ctx: PageCtx,
    bytes: Vec<u8>,
) -> Result<feeds::Page, String> {
    tokio::task::spawn_blocking(move || feeds::parse(&source, ctx, &bytes))
        .await
        .map_err(|e| format!("parser crashed: {e}"))?
        .map_err(|e| e.to_string())
}
