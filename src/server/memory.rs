//! Memory for queries: one pool for the whole server, and each connection's share of it.
//!
//! Each connection had a pool of its own of `query_memory_mb`, so a hundred connections could
//! together ask for a hundred times that. Now every reservation is taken from the connection's
//! [`Share`] (at most `query_memory_mb`) *and* from the server's pool (`memory_mb`): a query
//! over its share, or one that finds the server's pool spent, spills or fails with 53200 while
//! the others go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{Result, resources_datafusion_err};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// The server's pool; `memory_mb = 0` in `[server]` means 60% of the machine's memory.
pub fn server_pool(memory_mb: usize) -> Arc<dyn MemoryPool> {
    let bytes = if memory_mb > 0 {
        memory_mb.saturating_mul(1 << 20)
    } else {
        physical_memory().map_or(8 << 30, |b| b / 10 * 6)
    };
    Arc::new(GreedyMemoryPool::new(bytes))
}

fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One connection's share of the server's pool.
#[derive(Debug)]
pub struct Share {
    server: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl Share {
    pub fn new(server: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Share {
            server,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection share: {} of {} bytes in use",
            self.reserved(),
            self.limit
        )
    }
}

impl MemoryPool for Share {
    fn name(&self) -> &str {
        "rebuy_connection_share"
    }
    fn register(&self, consumer: &MemoryConsumer) {
        self.server.register(consumer);
    }
    fn unregister(&self, consumer: &MemoryConsumer) {
        self.server.unregister(consumer);
    }
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::SeqCst);
        self.server.grow(reservation, additional);
    }
    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(shrink))
            });
        self.server.shrink(reservation, shrink);
    }
    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let new = used.checked_add(additional)?;
                (new <= self.limit).then_some(new)
            })
            .map_err(|used| {
                resources_datafusion_err!(
                    "Failed to allocate additional {additional} bytes for {}: the query's memory \
                     limit is {} bytes and {used} are in use (query_memory_mb)",
                    reservation.consumer().name(),
                    self.limit
                )
            })?;
        if let Err(e) = self.server.try_grow(reservation, additional) {
            let _ = self
                .used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                    Some(u.saturating_sub(additional))
                });
            return Err(e);
        }
        Ok(())
    }
    fn reserved(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_stops_at_its_limit_and_at_the_servers() {
        let server: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let a: Arc<dyn MemoryPool> = Arc::new(Share::new(server.clone(), 600));
        let b: Arc<dyn MemoryPool> = Arc::new(Share::new(server.clone(), 600));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(500).unwrap();
        assert!(ra.try_grow(200).is_err(), "over the share");
        assert!(rb.try_grow(600).is_err(), "the server has 500 left");
        rb.try_grow(500).unwrap();
        assert_eq!(server.reserved(), 1000);
        ra.free();
        rb.try_grow(100).unwrap();
        assert_eq!(a.reserved(), 0);
        assert_eq!(b.reserved(), 600);
    }
}
