//! What every [`CollectionStore`] promises, as one check any implementation runs on
//! itself: [`check_collection_contract`] on an empty store (SQLite file, memory, Postgres).

use super::{Check, alice, bob, run_checks};
use crate::store::{Claim, CollectionStore};

/// The checks, in order.
const CHECKS: &[Check<dyn CollectionStore>] = &[
    check!(a_claimed_id_is_its_owners_and_no_one_elses),
    check!(an_owner_lists_only_its_own_oldest_first),
    check!(only_the_owner_releases_and_then_the_id_is_free),
];

/// Runs every check of the contract against `store`, which must start empty.
pub(crate) async fn check_collection_contract(store: &(dyn CollectionStore + 'static)) {
    run_checks("collection store", store, CHECKS).await;
}

async fn a_claimed_id_is_its_owners_and_no_one_elses(store: &dyn CollectionStore) {
    assert_eq!(store.owned_by(&alice(), "docs").await.unwrap(), None);
    assert_eq!(
        store.claim(&alice(), "docs", "Docs").await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.claim(&alice(), "docs", "Docs again").await.unwrap(),
        Claim::AlreadyYours
    );
    assert_eq!(
        store.claim(&bob(), "docs", "docs").await.unwrap(),
        Claim::Another,
        "an id another principal owns is never handed over"
    );
    assert_eq!(store.owned_by(&alice(), "docs").await.unwrap(), Some(true));
    assert_eq!(store.owned_by(&bob(), "docs").await.unwrap(), Some(false));
    let listed = store.list(&alice()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        ("docs", "Docs"),
        "the first claim's name is kept"
    );
    assert!(store.list(&bob()).await.unwrap().is_empty());
    assert!(store.release(&alice(), "docs").await.unwrap());
}

async fn an_owner_lists_only_its_own_oldest_first(store: &dyn CollectionStore) {
    for (owner, id) in [(alice(), "a-one"), (bob(), "b-one"), (alice(), "a-two")] {
        assert_eq!(store.claim(&owner, id, id).await.unwrap(), Claim::Claimed);
    }
    let ids = |list: Vec<crate::store::OwnedCollection>| {
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(store.list(&alice()).await.unwrap()), ["a-one", "a-two"]);
    assert_eq!(ids(store.list(&bob()).await.unwrap()), ["b-one"]);
    for (owner, id) in [(alice(), "a-one"), (bob(), "b-one"), (alice(), "a-two")] {
        assert!(store.release(&owner, id).await.unwrap());
    }
}

async fn only_the_owner_releases_and_then_the_id_is_free(store: &dyn CollectionStore) {
    store.claim(&alice(), "shared", "shared").await.unwrap();
    assert!(
        !store.release(&bob(), "shared").await.unwrap(),
        "another principal cannot release it"
    );
    assert_eq!(
        store.owned_by(&alice(), "shared").await.unwrap(),
        Some(true)
    );
    assert!(store.release(&alice(), "shared").await.unwrap());
    assert!(!store.release(&alice(), "shared").await.unwrap());
    assert_eq!(store.owned_by(&alice(), "shared").await.unwrap(), None);
    assert_eq!(
        store.claim(&bob(), "shared", "shared").await.unwrap(),
        Claim::Claimed
    );
    assert!(store.release(&bob(), "shared").await.unwrap());
}
