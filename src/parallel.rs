//! Work split over the machine's cores, for the few jobs big enough to pay for threads:
//! planning a campaign to tens of thousands of recipients.

/// `work` over every item, in chunks on up to four threads, the results in item order (`work`
/// gets each item's index). Fewer than `min` items, or a single core, run on the caller.
pub fn map<T, R>(items: &[T], min: usize, work: impl Fn(usize, &T) -> R + Sync) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let serial = |offset: usize, part: &[T]| -> Vec<R> {
        part.iter()
            .enumerate()
            .map(|(i, item)| work(offset + i, item))
            .collect()
    };
    if threads < 2 || items.len() < min.max(2) {
        return serial(0, items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let serial = &serial;
        let parts: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                let offset = n * chunk;
                // A thread that cannot be started leaves its chunk to the caller.
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || serial(offset, part))
                    .map_err(|_| (offset, part))
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for part in parts {
            match part {
                Ok(handle) => match handle.join() {
                    Ok(results) => out.extend(results),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err((offset, part)) => out.extend(serial(offset, part)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_item_order_with_each_items_index() {
        let items: Vec<u64> = (0..10_001).collect();
        let out = super::map(&items, 100, |i, &item| (i as u64, item * 2));
        assert_eq!(out.len(), items.len());
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, &(at, doubled))| at == i as u64 && doubled == 2 * i as u64)
        );
        let few = super::map(&items[..3], 100, |i, _| i);
        assert_eq!(few, [0, 1, 2]);
    }
}
