//! The chain state machine: [`Chain`] takes a log's entries in `seq`
//! order ([`Item`]) and its checkpoints, recomputes the chain, checks each
//! checkpoint as the chain passes its `seq`, and classifies the first
//! problem. It does no I/O: the database and file readers feed it.

use std::collections::BTreeMap;

use exchange_schema::audit::{ChainHash, Checkpoint, CheckpointError, GENESIS, chain_hash};

use super::failure::{EditDetail, VerifyFailure, signed_at};
use super::{VerifyOptions, VerifyReport};
use crate::lines::parse_hash;

/// How far from its position a moved entry is looked for.
const SEARCH_RADIUS: u64 = 1 << 20;

/// One chained entry as presented to [`Chain::entry`].
pub(super) enum Item<'a> {
    /// An entry with its event (already reduced to its digest, or the reason
    /// it could not be) and its stored hashes.
    Full {
        digest: Result<ChainHash, EditDetail>,
        prev: &'a str,
        hash: &'a str,
    },
    /// An entry of an export present only as its event digest.
    Elided { digest: &'a str, hash: &'a str },
}

/// The state of a verification as it walks the chain.
pub(super) struct Chain {
    log_id: Option<String>,
    key: Option<String>,
    pinned: bool,
    /// The key rotations followed: (seq of the handover, new key).
    rotations: Vec<(u64, String)>,
    /// The last `seq` verified (0 before the first entry).
    pub(super) last: u64,
    /// The recomputed hash at `last`.
    head: ChainHash,
    /// The highest `seq` a moved entry may come from.
    pub(super) search_upper: u64,
    /// The log's own checkpoints for `seq`s not yet reached.
    pending: BTreeMap<u64, Vec<Checkpoint>>,
    /// Collected checkpoints of this log for `seq`s not yet reached.
    collected: BTreeMap<u64, Vec<Checkpoint>>,
    entries: u64,
    elided: u64,
    checkpoints_verified: u64,
    collected_matched: u64,
    /// The collected checkpoint with the highest `seq` that matched.
    newest_collected: Option<Checkpoint>,
    /// The last `seq` at which any checkpoint matched.
    verified_through: u64,
    signed_through: u64,
    /// The newest `seq` of the log's checkpoint history, when it is known
    /// apart from the signed head (a live database). Collected checkpoints
    /// come from that history, so one beyond it means history was cut even
    /// where the signed head still covers the entries.
    pub(super) history_through: Option<u64>,
}

impl Chain {
    pub(super) fn new(opts: &VerifyOptions, log_id: Option<String>) -> Result<Self, VerifyFailure> {
        let log_id = opts.log_id.clone().or(log_id);
        let pinned = log_id
            .as_ref()
            .and_then(|id| opts.keys.get(id))
            .or(opts.expected_key.as_ref());
        let key = match pinned {
            Some(key) => {
                let key = key.trim().to_ascii_lowercase();
                match hex::decode(&key) {
                    Ok(bytes) if bytes.len() == 32 => Some(key),
                    _ => return Err(VerifyFailure::InvalidKey),
                }
            }
            None => None,
        };
        let mut collected: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
        if !opts.collected_checkpoints.is_empty() {
            let id = log_id.as_deref().ok_or(VerifyFailure::UnknownLogId)?;
            for cp in opts
                .collected_checkpoints
                .iter()
                .filter(|cp| cp.log_id == id)
            {
                if cp.seq == 0 {
                    return Err(VerifyFailure::CollectedInvalid {
                        seq: 0,
                        reason: "seq 0 names no entry".to_owned(),
                    });
                }
                collected.entry(cp.seq).or_default().push(cp.clone());
            }
        }
        Ok(Self {
            log_id,
            rotations: Vec::new(),
            pinned: key.is_some(),
            key,
            last: 0,
            head: GENESIS,
            search_upper: 0,
            pending: BTreeMap::new(),
            collected,
            entries: 0,
            elided: 0,
            checkpoints_verified: 0,
            collected_matched: 0,
            newest_collected: None,
            verified_through: 0,
            signed_through: 0,
            history_through: None,
        })
    }

    /// Takes one of the log's own checkpoints: checked now if the chain is at
    /// its `seq`, otherwise when it gets there.
    pub(super) fn add_checkpoint(&mut self, cp: Checkpoint) -> Result<(), VerifyFailure> {
        match &self.log_id {
            Some(id) if *id != cp.log_id => {
                return Err(VerifyFailure::ForeignCheckpoint {
                    seq: cp.seq,
                    found: cp.log_id,
                    expected: id.clone(),
                });
            }
            Some(_) => {}
            None => self.log_id = Some(cp.log_id.clone()),
        }
        if cp.seq == 0 {
            return Err(VerifyFailure::MalformedCheckpoint {
                seq: 0,
                reason: "seq 0 names no entry".to_owned(),
            });
        }
        if cp.seq < self.last {
            return Err(VerifyFailure::MisplacedCheckpoint {
                seq: cp.seq,
                after: self.last,
            });
        }
        if cp.seq == self.last {
            return self.check_own(&cp);
        }
        self.pending.entry(cp.seq).or_default().push(cp);
        Ok(())
    }

    /// Checks the next entry's place in the chain and moves the head on.
    pub(super) fn entry(&mut self, seq: u64, item: Item<'_>) -> Result<(), VerifyFailure> {
        let expected = self.last + 1;
        if seq < expected {
            return Err(VerifyFailure::Duplicated { seq });
        }
        if seq > expected {
            return Err(VerifyFailure::Deleted {
                seq: expected,
                next: seq,
            });
        }
        let edited = |detail| VerifyFailure::Edited { seq, detail };
        let hash = match item {
            Item::Full { digest, prev, hash } => {
                let digest = digest.map_err(edited)?;
                let prev = parse_hash(prev).ok_or(edited(EditDetail::BadHash("prev_hash")))?;
                let hash = parse_hash(hash).ok_or(edited(EditDetail::BadHash("hash")))?;
                let own = chain_hash(&prev, seq, &digest);
                if own == hash && prev != self.head {
                    return Err(VerifyFailure::BrokenLink { seq });
                }
                if own != hash {
                    return Err(match self.origin_of(seq, &prev, &digest, &hash) {
                        Some(from) => VerifyFailure::Reordered { seq, from },
                        None => edited(EditDetail::ContentMismatch),
                    });
                }
                hash
            }
            Item::Elided { digest, hash } => {
                let digest = parse_hash(digest).ok_or(edited(EditDetail::BadHash("digest")))?;
                let hash = parse_hash(hash).ok_or(edited(EditDetail::BadHash("hash")))?;
                if chain_hash(&self.head, seq, &digest) != hash {
                    return Err(edited(EditDetail::ElidedMismatch));
                }
                self.elided += 1;
                hash
            }
        };
        self.entries += 1;
        self.last = seq;
        self.head = hash;
        Ok(())
    }

    /// The other `seq` an entry hashes correctly at, if any: where it was
    /// moved from.
    fn origin_of(
        &self,
        seq: u64,
        prev: &ChainHash,
        digest: &ChainHash,
        hash: &ChainHash,
    ) -> Option<u64> {
        let low = seq.saturating_sub(SEARCH_RADIUS).max(1);
        let high = self.search_upper.min(seq.saturating_add(SEARCH_RADIUS));
        (low..=high)
            .filter(|&s| s != seq)
            .find(|&s| chain_hash(prev, s, digest) == *hash)
    }

    /// Checks the checkpoints at `seq`, which the chain has just reached,
    /// with the log's key; a checkpoint there that announces a new key (a
    /// rotation, signed by the key it replaces) makes that key the one the
    /// later checkpoints must be signed with.
    pub(super) fn pass(&mut self, seq: u64) -> Result<(), VerifyFailure> {
        let mut next_key: Option<String> = None;
        if let Some(checkpoints) = self.pending.remove(&seq) {
            for cp in &checkpoints {
                self.check_own(cp)?;
                next_key = cp.next_key.clone().or(next_key);
            }
        }
        if let Some(checkpoints) = self.collected.remove(&seq) {
            for cp in &checkpoints {
                self.check_collected(cp)?;
                next_key = cp.next_key.clone().or(next_key);
            }
        }
        if let Some(next) = next_key {
            let next = next.to_ascii_lowercase();
            if !hex::decode(&next).is_ok_and(|k| k.len() == 32) {
                return Err(VerifyFailure::MalformedCheckpoint {
                    seq,
                    reason: "the key it hands over to is not an Ed25519 public key in hex"
                        .to_owned(),
                });
            }
            self.rotations.push((seq, next.clone()));
            self.key = Some(next);
        }
        Ok(())
    }

    fn check_signature(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        let key = self
            .key
            .get_or_insert_with(|| cp.public_key.to_ascii_lowercase())
            .clone();
        cp.verify(Some(&key)).map_err(|err| match err {
            CheckpointError::UnexpectedKey(seq) => VerifyFailure::UnexpectedKey {
                seq,
                expected: key,
                found: cp.public_key.clone(),
            },
            CheckpointError::BadSignature(seq) => VerifyFailure::BadSignature { seq },
            CheckpointError::Encoding(seq) => VerifyFailure::MalformedCheckpoint {
                seq,
                reason: "its key or signature is not hex-encoded correctly".to_owned(),
            },
        })
    }

    fn check_own(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        self.check_signature(cp)?;
        if parse_hash(&cp.head) != Some(self.head) {
            return Err(VerifyFailure::HistoryRewritten {
                seq: cp.seq,
                since: self.verified_through,
                checkpoint: cp.head.clone(),
                log: hex::encode(self.head),
            });
        }
        self.checkpoints_verified += 1;
        self.signed_through = cp.seq;
        self.verified_through = cp.seq;
        Ok(())
    }

    /// Checks a collected checkpoint's signature with the log's key: the
    /// pinned one, or else the key of the log's own first checkpoint once
    /// one was checked.
    fn verify_collected(&self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        cp.verify(self.key.as_deref())
            .map_err(|err| VerifyFailure::CollectedInvalid {
                seq: cp.seq,
                reason: match err {
                    CheckpointError::UnexpectedKey(_) => {
                        "it was signed by a key other than the expected one"
                    }
                    CheckpointError::BadSignature(_) => "its signature is bad",
                    CheckpointError::Encoding(_) => {
                        "its key or signature is not hex-encoded correctly"
                    }
                }
                .to_owned(),
            })
    }

    fn check_collected(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        self.verify_collected(cp)?;
        if parse_hash(&cp.head) != Some(self.head) {
            return Err(VerifyFailure::Fork {
                seq: cp.seq,
                collected: cp.head.clone(),
                log: hex::encode(self.head),
            });
        }
        self.collected_matched += 1;
        self.verified_through = cp.seq;
        if self
            .newest_collected
            .as_ref()
            .is_none_or(|n| n.seq < cp.seq)
        {
            self.newest_collected = Some(cp.clone());
        }
        Ok(())
    }

    /// After the last entry: a checkpoint still waiting covers an entry the
    /// log no longer has; or the log's own checkpoints stop before one
    /// collected earlier.
    pub(super) fn check_end(&mut self) -> Result<(), VerifyFailure> {
        if let Some(cp) = self
            .pending
            .values()
            .next()
            .and_then(|cps| cps.first())
            .cloned()
        {
            self.check_signature(&cp)?;
            return Err(VerifyFailure::Truncated {
                last_seq: self.last,
                checkpoint_seq: cp.seq,
            });
        }
        // The newest collected checkpoint beyond the end: how far the log
        // reached when it was collected.
        if let Some(cp) = self
            .collected
            .values()
            .next_back()
            .and_then(|cps| cps.last())
        {
            self.verify_collected(cp)?;
            return Err(VerifyFailure::EntriesCut {
                last_seq: self.last,
                checkpoint_seq: cp.seq,
                signed_at: signed_at(cp),
            });
        }
        let history = self.history_through.unwrap_or(self.signed_through);
        if let Some(cp) = &self.newest_collected
            && cp.seq > history
        {
            return Err(VerifyFailure::CheckpointsCut {
                newest: history,
                checkpoint_seq: cp.seq,
                signed_at: signed_at(cp),
            });
        }
        Ok(())
    }

    pub(super) fn report(self) -> Result<VerifyReport, VerifyFailure> {
        if self.pinned && self.last > 0 && self.checkpoints_verified == 0 {
            return Err(VerifyFailure::Unsigned { entries: self.last });
        }
        Ok(VerifyReport {
            log_id: self.log_id,
            entries_checked: self.entries,
            elided: self.elided,
            last_seq: self.last,
            head: hex::encode(self.head),
            checkpoints_verified: self.checkpoints_verified,
            signed_through: self.signed_through,
            collected_matched: self.collected_matched,
            public_key: self.key,
            key_pinned: self.pinned,
            key_rotations: self.rotations,
        })
    }
}

/// `SHA-256` of the stored event text: equal to [`event_digest`] for every
/// entry the node wrote, since it stores exactly the canonical bytes.
pub(crate) fn text_digest(text: &str) -> ChainHash {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::Ed25519KeyPair;

    use super::*;
    use crate::verify::fixtures::{LOG, new_key};

    /// One entry held in memory: its event digest and stored hashes (hex).
    #[derive(Clone)]
    struct Row {
        digest: ChainHash,
        prev: String,
        hash: String,
    }

    /// A well-chained log of `n` entries, and its head at every `seq`.
    fn rows(n: u64) -> (Vec<Row>, Vec<ChainHash>) {
        let mut prev = GENESIS;
        let mut rows = Vec::new();
        let mut heads = vec![GENESIS];
        for seq in 1..=n {
            let digest = text_digest(&format!("event {seq}"));
            let hash = chain_hash(&prev, seq, &digest);
            rows.push(Row {
                digest,
                prev: hex::encode(prev),
                hash: hex::encode(hash),
            });
            heads.push(hash);
            prev = hash;
        }
        (rows, heads)
    }

    fn sign(key: &Ed25519KeyPair, seq: u64, heads: &[ChainHash]) -> Checkpoint {
        Checkpoint::sign(key, LOG, seq, &heads[seq as usize])
    }

    fn pinned(key: &Ed25519KeyPair) -> VerifyOptions {
        VerifyOptions {
            expected_key: Some(hex::encode(
                aws_lc_rs::signature::KeyPair::public_key(key).as_ref(),
            )),
            ..VerifyOptions::default()
        }
    }

    /// Runs the chain over `rows` (at the `seq`s given) with the log's own
    /// `checkpoints` handed over first, as a database page does.
    fn run(
        opts: &VerifyOptions,
        rows: &[(u64, Row)],
        checkpoints: &[Checkpoint],
    ) -> Result<VerifyReport, VerifyFailure> {
        let mut chain = Chain::new(opts, Some(LOG.to_owned()))?;
        chain.search_upper = rows.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        for cp in checkpoints {
            chain.add_checkpoint(cp.clone())?;
        }
        for (seq, row) in rows {
            chain.entry(
                *seq,
                Item::Full {
                    digest: Ok(row.digest),
                    prev: &row.prev,
                    hash: &row.hash,
                },
            )?;
            chain.pass(*seq)?;
        }
        chain.check_end()?;
        chain.report()
    }

    fn numbered(rows: Vec<Row>) -> Vec<(u64, Row)> {
        (1..).zip(rows).collect()
    }

    #[test]
    fn a_good_chain_verifies_and_reports() {
        let key = new_key();
        let (rows, heads) = rows(12);
        let checkpoints = [sign(&key, 5, &heads), sign(&key, 10, &heads)];
        let report = run(&pinned(&key), &numbered(rows), &checkpoints).unwrap();
        assert_eq!(report.entries_checked, 12);
        assert_eq!(report.last_seq, 12);
        assert_eq!(report.head, hex::encode(heads[12]));
        assert_eq!(
            (report.checkpoints_verified, report.signed_through),
            (2, 10)
        );
        assert!(report.key_pinned);
        assert_eq!(report.log_id.as_deref(), Some(LOG));
        assert!(
            report
                .warnings()
                .iter()
                .any(|w| w.contains("entries 11 to 12 are not yet covered")),
            "{report}"
        );

        let empty = run(&VerifyOptions::default(), &[], &[]).unwrap();
        assert_eq!((empty.last_seq, empty.head), (0, hex::encode(GENESIS)));
    }

    #[test]
    fn bad_entries_are_classified() {
        let (good, _) = rows(8);
        let opts = VerifyOptions::default();

        let mut edited = good.clone();
        edited[3].digest = text_digest("something else");
        assert_eq!(
            run(&opts, &numbered(edited), &[]).unwrap_err(),
            VerifyFailure::Edited {
                seq: 4,
                detail: EditDetail::ContentMismatch
            }
        );

        let mut deleted = numbered(good.clone());
        deleted.remove(5);
        assert_eq!(
            run(&opts, &deleted, &[]).unwrap_err(),
            VerifyFailure::Deleted { seq: 6, next: 7 }
        );

        let mut twice = numbered(good.clone());
        twice.insert(3, twice[2].clone());
        assert_eq!(
            run(&opts, &twice, &[]).unwrap_err(),
            VerifyFailure::Duplicated { seq: 3 }
        );

        let mut swapped = good.clone();
        swapped.swap(1, 6);
        assert_eq!(
            run(&opts, &numbered(swapped), &[]).unwrap_err(),
            VerifyFailure::Reordered { seq: 2, from: 7 }
        );

        // Entry 3 rewritten with a recomputed hash: entry 4 no longer links.
        let mut rehashed = good.clone();
        rehashed[2].digest = text_digest("rewritten");
        let prev: ChainHash = parse_hash(&rehashed[2].prev).unwrap();
        rehashed[2].hash = hex::encode(chain_hash(&prev, 3, &rehashed[2].digest));
        assert_eq!(
            run(&opts, &numbered(rehashed), &[]).unwrap_err(),
            VerifyFailure::BrokenLink { seq: 4 }
        );

        let mut bad_hex = good;
        bad_hex[0].prev = "not hex".into();
        assert_eq!(
            run(&opts, &numbered(bad_hex), &[]).unwrap_err(),
            VerifyFailure::Edited {
                seq: 1,
                detail: EditDetail::BadHash("prev_hash")
            }
        );
    }

    #[test]
    fn elided_entries_chain_by_their_digest() {
        let (rows, heads) = rows(3);
        let mut chain = Chain::new(&VerifyOptions::default(), None).unwrap();
        let digest = hex::encode(rows[0].digest);
        chain
            .entry(
                1,
                Item::Elided {
                    digest: &digest,
                    hash: &rows[0].hash,
                },
            )
            .unwrap();
        let unreadable = chain.entry(
            2,
            Item::Full {
                digest: Err(EditDetail::NotCanonical),
                prev: &rows[1].prev,
                hash: &rows[1].hash,
            },
        );
        assert_eq!(
            unreadable.unwrap_err(),
            VerifyFailure::Edited {
                seq: 2,
                detail: EditDetail::NotCanonical
            }
        );
        let wrong = hex::encode([7u8; 32]);
        assert_eq!(
            chain
                .entry(
                    2,
                    Item::Elided {
                        digest: &wrong,
                        hash: &rows[1].hash
                    }
                )
                .unwrap_err(),
            VerifyFailure::Edited {
                seq: 2,
                detail: EditDetail::ElidedMismatch
            }
        );
        assert_eq!(
            chain
                .entry(
                    2,
                    Item::Elided {
                        digest: "7",
                        hash: &rows[1].hash
                    }
                )
                .unwrap_err(),
            VerifyFailure::Edited {
                seq: 2,
                detail: EditDetail::BadHash("digest")
            }
        );
        let report = chain.report().unwrap();
        assert_eq!((report.entries_checked, report.elided), (1, 1));
        assert_eq!(report.head, hex::encode(heads[1]));
    }

    #[test]
    fn checkpoints_are_checked_as_the_chain_passes_them() {
        let key = new_key();
        let (good, heads) = rows(10);
        let opts = pinned(&key);

        // The log's own checkpoint disagrees with the chain.
        let mut rewritten = good.clone();
        rewritten[6].digest = text_digest("rewritten");
        let mut prev = parse_hash(&rewritten[6].prev).unwrap();
        for (i, row) in rewritten.iter_mut().enumerate().skip(6) {
            let seq = i as u64 + 1;
            row.prev = hex::encode(prev);
            prev = chain_hash(&prev, seq, &row.digest);
            row.hash = hex::encode(prev);
        }
        let own = [sign(&key, 5, &heads), sign(&key, 10, &heads)];
        let failure = run(&opts, &numbered(rewritten.clone()), &own).unwrap_err();
        assert!(
            matches!(
                failure,
                VerifyFailure::HistoryRewritten {
                    seq: 10,
                    since: 5,
                    ..
                }
            ),
            "{failure}"
        );

        // Re-signed, it agrees with itself but not with what was collected.
        let mut new_heads = heads.clone();
        new_heads[10] = prev;
        let resigned = [sign(&key, 5, &heads), sign(&key, 10, &new_heads)];
        run(&opts, &numbered(rewritten.clone()), &resigned).unwrap();
        let with_collected = VerifyOptions {
            collected_checkpoints: vec![sign(&key, 10, &heads)],
            ..opts.clone()
        };
        assert_eq!(
            run(&with_collected, &numbered(rewritten), &resigned).unwrap_err(),
            VerifyFailure::Fork {
                seq: 10,
                collected: hex::encode(heads[10]),
                log: hex::encode(prev),
            }
        );

        // A checkpoint beyond the end: truncated.
        let cut = numbered(good[..8].to_vec());
        assert_eq!(
            run(&opts, &cut, &own).unwrap_err(),
            VerifyFailure::Truncated {
                last_seq: 8,
                checkpoint_seq: 10
            }
        );
        // Its own checkpoints cut too, a collected one shows it.
        let collected = sign(&key, 10, &heads);
        let collected_opts = VerifyOptions {
            collected_checkpoints: vec![collected.clone()],
            ..opts.clone()
        };
        assert_eq!(
            run(&collected_opts, &cut, &own[..1]).unwrap_err(),
            VerifyFailure::EntriesCut {
                last_seq: 8,
                checkpoint_seq: 10,
                signed_at: signed_at(&collected),
            }
        );
        // Entries kept, checkpoints cut.
        assert_eq!(
            run(&collected_opts, &numbered(good.clone()), &own[..1]).unwrap_err(),
            VerifyFailure::CheckpointsCut {
                newest: 5,
                checkpoint_seq: 10,
                signed_at: signed_at(&collected),
            }
        );

        // Signed by another key, pinned or not.
        let intruder = new_key();
        let forged = [sign(&key, 5, &heads), sign(&intruder, 10, &heads)];
        for opts in [opts.clone(), VerifyOptions::default()] {
            assert!(matches!(
                run(&opts, &numbered(good.clone()), &forged).unwrap_err(),
                VerifyFailure::UnexpectedKey { seq: 10, .. }
            ));
        }
        let mut bad = sign(&key, 5, &heads);
        bad.signed_at += time::Duration::seconds(1);
        assert_eq!(
            run(&opts, &numbered(good.clone()), &[bad]).unwrap_err(),
            VerifyFailure::BadSignature { seq: 5 }
        );
    }

    #[test]
    fn what_the_chain_refuses_before_it_starts() {
        let key = new_key();
        let (good, heads) = rows(6);
        let opts = pinned(&key);
        assert_eq!(
            run(&opts, &numbered(good.clone()), &[]).unwrap_err(),
            VerifyFailure::Unsigned { entries: 6 }
        );
        let bad_key = VerifyOptions {
            expected_key: Some("abc".into()),
            ..VerifyOptions::default()
        };
        assert_eq!(
            run(&bad_key, &[], &[]).unwrap_err(),
            VerifyFailure::InvalidKey
        );
        let unnamed = VerifyOptions {
            collected_checkpoints: vec![sign(&key, 5, &heads)],
            ..VerifyOptions::default()
        };
        assert_eq!(
            Chain::new(&unnamed, None).err(),
            Some(VerifyFailure::UnknownLogId)
        );

        let mut chain = Chain::new(&opts, Some(LOG.to_owned())).unwrap();
        let foreign = Checkpoint::sign(&key, "legal-aid-east", 5, &heads[5]);
        assert!(matches!(
            chain.add_checkpoint(foreign).unwrap_err(),
            VerifyFailure::ForeignCheckpoint { seq: 5, .. }
        ));
        for (seq, row) in numbered(good).into_iter().take(3) {
            chain
                .entry(
                    seq,
                    Item::Full {
                        digest: Ok(row.digest),
                        prev: &row.prev,
                        hash: &row.hash,
                    },
                )
                .unwrap();
        }
        assert_eq!(
            chain.add_checkpoint(sign(&key, 2, &heads)).unwrap_err(),
            VerifyFailure::MisplacedCheckpoint { seq: 2, after: 3 }
        );
        // At the chain's position, a checkpoint is checked at once.
        chain.add_checkpoint(sign(&key, 3, &heads)).unwrap();
        assert_eq!(chain.report().unwrap().signed_through, 3);
    }
}
