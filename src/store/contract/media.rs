//! What every [`MediaStore`] promises, as one check any implementation runs on itself:
//! [`check_media_contract`] on an empty store (SQLite file, memory, Postgres). Times are
//! made-up unix milliseconds; the store takes them from the caller.

use super::{Check, alice, bob, run_checks};
use crate::principal::Principal;
use crate::store::{MediaCaps, MediaItem, MediaStore};

/// An hour in milliseconds.
const HOUR: i64 = 3_600_000;

/// The checks, in order.
const CHECKS: &[Check<dyn MediaStore>] = &[
    check!(an_item_is_read_back_whole_by_its_owner_only),
    check!(an_expired_item_is_gone_and_pruned),
    check!(keeping_an_item_deletes_expired_ones),
    check!(an_owner_over_the_cap_loses_their_oldest_items_only),
    check!(over_the_total_the_oldest_of_anyone_go),
];

/// Caps of `per_owner` bytes per owner and no total.
fn per_owner(per_owner: u64) -> MediaCaps {
    MediaCaps {
        per_owner,
        total: u64::MAX,
    }
}

/// Runs every check of the contract against `store`, which must start empty.
pub(crate) async fn check_media_contract(store: &(dyn MediaStore + 'static)) {
    run_checks("media store", store, CHECKS).await;
}

/// An item `id` of `size` bytes made at `now`, kept an hour.
fn item(id: &str, size: usize, now: i64) -> MediaItem {
    MediaItem {
        id: id.to_owned(),
        mime: "audio/wav".to_owned(),
        name: format!("{id}.wav"),
        bytes: (0..size).map(|i| (i % 251) as u8).collect(),
        created_at: now,
        expires_at: now + HOUR,
    }
}

/// Keeps `item` for `owner` with room for everything.
async fn put(store: &dyn MediaStore, owner: &Principal, item: &MediaItem) {
    assert!(
        store
            .put(owner, item, MediaCaps::NONE)
            .await
            .unwrap()
            .is_empty(),
        "nothing is evicted with room for everything"
    );
}

async fn an_item_is_read_back_whole_by_its_owner_only(store: &dyn MediaStore) {
    let kept = item("m-whole", 1000, 1_000);
    put(store, &alice(), &kept).await;
    let read = store
        .get(&alice(), "m-whole", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.bytes, kept.bytes);
    assert_eq!(
        (read.mime.as_str(), read.name.as_str()),
        ("audio/wav", "m-whole.wav")
    );
    assert_eq!((read.created_at, read.expires_at), (1_000, 1_000 + HOUR));
    assert_eq!(store.get(&bob(), "m-whole", 2_000).await.unwrap(), None);
    assert_eq!(store.get(&alice(), "m-none", 2_000).await.unwrap(), None);
}

async fn an_expired_item_is_gone_and_pruned(store: &dyn MediaStore) {
    let now = 10 * HOUR;
    put(store, &alice(), &item("m-old", 10, now)).await;
    assert!(
        store
            .get(&alice(), "m-old", now + HOUR - 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.get(&alice(), "m-old", now + HOUR).await.unwrap(),
        None
    );
    assert!(store.prune(now + HOUR).await.unwrap() >= 1);
    assert_eq!(store.prune(now + HOUR).await.unwrap(), 0);
}

async fn keeping_an_item_deletes_expired_ones(store: &dyn MediaStore) {
    let now = 20 * HOUR;
    put(store, &bob(), &item("m-bobs-old", 10, now)).await;
    put(store, &alice(), &item("m-new", 10, now + 2 * HOUR)).await;
    assert_eq!(
        store.prune(now + 2 * HOUR).await.unwrap(),
        0,
        "bob's expired item went when alice kept hers"
    );
}

async fn an_owner_over_the_cap_loses_their_oldest_items_only(store: &dyn MediaStore) {
    let now = 30 * HOUR;
    put(store, &alice(), &item("m-a1", 10, now)).await;
    put(store, &alice(), &item("m-a2", 10, now + 1)).await;
    put(store, &bob(), &item("m-b1", 10, now + 2)).await;
    let evicted = store
        .put(&alice(), &item("m-a3", 10, now + 3), per_owner(25))
        .await
        .unwrap();
    assert_eq!(evicted, ["m-a1"]);
    assert_eq!(store.get(&alice(), "m-a1", now + 4).await.unwrap(), None);
    for id in ["m-a2", "m-a3"] {
        assert!(
            store.get(&alice(), id, now + 4).await.unwrap().is_some(),
            "{id}"
        );
    }
    assert!(
        store.get(&bob(), "m-b1", now + 4).await.unwrap().is_some(),
        "another owner's items never count"
    );
    let evicted = store
        .put(&alice(), &item("m-a4", 30, now + 5), per_owner(25))
        .await
        .unwrap();
    assert_eq!(evicted, ["m-a3", "m-a2"], "newest first beyond the cap");
    assert!(
        store
            .get(&alice(), "m-a4", now + 6)
            .await
            .unwrap()
            .is_some(),
        "the item just kept stays even alone over the cap"
    );
}

async fn over_the_total_the_oldest_of_anyone_go(store: &dyn MediaStore) {
    let now = 40 * HOUR;
    // What earlier checks kept expires first, so only this check's items count.
    store.prune(now).await.unwrap();
    for (owner, id, at) in [(bob(), "t-b1", 0), (alice(), "t-a1", 1), (bob(), "t-b2", 2)] {
        put(store, &owner, &item(id, 10, now + HOUR + at)).await;
    }
    let caps = MediaCaps {
        per_owner: u64::MAX,
        total: 25,
    };
    let evicted = store
        .put(&alice(), &item("t-a2", 10, now + HOUR + 3), caps)
        .await
        .unwrap();
    assert_eq!(evicted, ["t-a1", "t-b1"], "newest first beyond the total");
    assert!(
        store
            .get(&bob(), "t-b2", now + HOUR + 4)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get(&alice(), "t-a2", now + HOUR + 4)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.get(&bob(), "t-b1", now + HOUR + 4).await.unwrap(),
        None
    );
}
