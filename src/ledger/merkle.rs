//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0, section 2.1) over byte strings:
//! hashing, the audit path of an inclusion proof, the consistency proof between two sizes, and
//! their verification.
//!
//! - leaf hash `SHA-256(0x00 || data)`, interior node `SHA-256(0x01 || left || right)`, the
//!   empty tree's root `SHA-256("")`;
//! - the tree of `n` leaves splits at `k`, the largest power of two below `n`: its left subtree
//!   is the complete tree of the first `k` leaves, its right one the tree of the rest.
//!
//! Proof generation asks a [`Subtrees`] source for the hashes of aligned leaf ranges, so the
//! stored tree (`super::tree`) answers from its nodes and an in-memory list of leaf hashes
//! ([`Leaves`]) from itself. Verification needs only the proof, sizes and roots.

use sha2::{Digest, Sha256};

use crate::error::Result;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (leaf hashes), in place of the recursive definition: the
/// complete subtrees are folded on a stack as they close, then the stack from the right.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut stack: Vec<(u32, Hash)> = Vec::with_capacity(64);
    for leaf in leaves {
        let mut cur = (0u32, *leaf);
        while let Some(&(level, left)) = stack.last() {
            if level != cur.0 {
                break;
            }
            stack.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
        }
        stack.push(cur);
    }
    let Some(mut acc) = stack.pop().map(|(_, h)| h) else {
        return empty_root();
    };
    while let Some((_, left)) = stack.pop() {
        acc = node_hash(&left, &acc);
    }
    acc
}

/// Where proof generation reads subtree hashes.
pub trait Subtrees {
    /// The root of the tree over leaves `start..end` (0-based, `start < end`). Proofs only ask
    /// for aligned ranges: `start` is a multiple of the largest power of two not above
    /// `end - start`.
    fn range_hash(&mut self, start: u64, end: u64) -> Result<Hash>;
}

/// A list of leaf hashes held in memory.
pub struct Leaves<'a>(pub &'a [Hash]);

impl Subtrees for Leaves<'_> {
    fn range_hash(&mut self, start: u64, end: u64) -> Result<Hash> {
        Ok(root_of(&self.0[start as usize..end as usize]))
    }
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 2.1.3.1),
/// bottom up. Panics unless `index < size`.
pub fn inclusion_path(src: &mut impl Subtrees, index: u64, size: u64) -> Result<Vec<Hash>> {
    assert!(index < size, "leaf {index} outside a tree of {size}");
    let mut path = Vec::with_capacity(64);
    // Walk down from the root, remembering the siblings; the path lists them bottom up.
    let (mut start, mut end, mut m) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            path.push(src.range_hash(start + k, end)?);
            end = start + k;
        } else {
            path.push(src.range_hash(start, start + k)?);
            start += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof from the tree of the first `old` leaves to that of the first `new`
/// (RFC 9162 2.1.4.1): empty when `old` is 0 or equals `new`. Panics unless `old <= new`.
pub fn consistency_path(src: &mut impl Subtrees, old: u64, new: u64) -> Result<Vec<Hash>> {
    assert!(old <= new, "old size {old} above new size {new}");
    let mut path = Vec::with_capacity(64);
    if old == 0 || old == new {
        return Ok(path);
    }
    // SUBPROOF(m, D[start:end], b), unrolled: each step descends into one side.
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                path.push(src.range_hash(start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            path.push(src.range_hash(start + k, end)?);
            end = start + k;
        } else {
            path.push(src.range_hash(start, start + k)?);
            start += k;
            m -= k;
            whole = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2): that `leaf` (a leaf hash) is leaf `index`
/// of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2): that the tree of `old` leaves with root
/// `old_root` is a prefix of the tree of `new` leaves with root `new_root`. For `old == new`
/// the proof is empty and the roots equal; for `old == 0` the proof is empty (the empty tree
/// is a prefix of every tree) and `old_root` is the empty tree's.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == 0 {
        return path.is_empty() && *old_root == empty_root();
    }
    if old == new {
        return path.is_empty() && old_root == new_root;
    }
    let mut proof = path;
    let seed;
    if old.is_power_of_two() {
        seed = *old_root;
    } else {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        seed = *first;
        proof = rest;
    }
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH as RFC 9162 defines it, recursively, straight from the text.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("record {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let all = leaves(300);
        for n in 0..=300 {
            assert_eq!(root_of(&all[..n]), mth(&all[..n]), "size {n}");
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The audit paths of RFC 9162 2.1.5's example tree of seven leaves, by name.
    #[test]
    fn rfc_example_paths() {
        let d = leaves(7);
        let (a, b, c) = (d[0], d[1], d[2]);
        let g = node_hash(&a, &b);
        let h = node_hash(&c, &d[3]);
        let i = node_hash(&d[4], &d[5]);
        let j = d[6];
        let k = node_hash(&g, &h);
        let l = node_hash(&i, &j);
        // The inclusion proof for d0 is [b, h, l]; for d3 [c, g, l]; for d4 [f, j, k].
        let path = |m| inclusion_path(&mut Leaves(&d), m, 7).unwrap();
        assert_eq!(path(0), vec![b, h, l]);
        assert_eq!(path(3), vec![c, g, l]);
        assert_eq!(path(4), vec![d[5], j, k]);
        assert_eq!(path(6), vec![i, k]);
        // Consistency: 3 → 7 is [c, d, g, l]; 4 → 7 is [l]; 6 → 7 is [i, j, k].
        let cons = |m| consistency_path(&mut Leaves(&d), m, 7).unwrap();
        assert_eq!(cons(3), vec![c, d[3], g, l]);
        assert_eq!(cons(4), vec![l]);
        assert_eq!(cons(6), vec![i, j, k]);
    }

    #[test]
    fn every_proof_up_to_64_leaves_verifies_and_no_altered_one_does() {
        let all = leaves(64);
        let roots: Vec<Hash> = (0..=64).map(|n| mth(&all[..n])).collect();
        for n in 1..=64u64 {
            let root = roots[n as usize];
            for m in 0..n {
                let path = inclusion_path(&mut Leaves(&all), m, n).unwrap();
                let leaf = all[m as usize];
                assert!(verify_inclusion(m, n, &leaf, &path, &root), "{m} in {n}");
                // The size is bound by the root: against the next tree's root the path fails.
                if n < 64 {
                    let next = roots[n as usize + 1];
                    assert!(
                        !verify_inclusion(m, n + 1, &leaf, &path, &next),
                        "{m} in {n}"
                    );
                }
                assert!(!verify_inclusion((m + 1) % n, n, &leaf, &path, &root) || n == 1);
                assert!(!verify_inclusion(
                    m,
                    n,
                    &all[(m as usize + 1) % 64],
                    &path,
                    &root
                ));
                for i in 0..path.len() {
                    let mut bad = path.clone();
                    bad[i][0] ^= 1;
                    assert!(!verify_inclusion(m, n, &leaf, &bad, &root));
                }
                let mut longer = path.clone();
                longer.push(root);
                assert!(!verify_inclusion(m, n, &leaf, &longer, &root));
            }
            for m in 0..=n {
                let path = consistency_path(&mut Leaves(&all), m, n).unwrap();
                let old = roots[m as usize];
                assert!(verify_consistency(m, n, &old, &root, &path), "{m} → {n}");
                if m > 0 && m < n {
                    assert!(!verify_consistency(m, n, &root, &root, &path));
                    assert!(!verify_consistency(m, n, &old, &old, &path));
                    assert!(!verify_consistency(m - 1, n, &old, &root, &path) || m == 1);
                    for i in 0..path.len() {
                        let mut bad = path.clone();
                        bad[i][31] ^= 0x80;
                        assert!(!verify_consistency(m, n, &old, &root, &bad), "{m} {n} {i}");
                    }
                    // A tree whose first m leaves differ fails with the honest proof.
                    let mut other = all[..n as usize].to_vec();
                    other[0][0] ^= 1;
                    let other_root = mth(&other);
                    assert!(!verify_consistency(m, n, &old, &other_root, &path));
                }
            }
        }
    }

    /// The RFC 6962 test vectors of Google's certificate-transparency implementations (also in
    /// transparency-dev/merkle and Go's internal/tlog tests): eight leaves, the roots of every
    /// prefix, and published inclusion and consistency proofs.
    #[test]
    fn rfc6962_vectors() {
        let h = |s: &str| -> Hash { hex::decode(s).unwrap().try_into().unwrap() };
        let data = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = data
            .iter()
            .map(|d| leaf_hash(&hex::decode(d).unwrap()))
            .collect();
        for n in 1..=8 {
            assert_eq!(root_of(&leaves[..n]), h(roots[n - 1]), "root of {n}");
        }
        let incl = [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ];
        assert_eq!(inclusion_path(&mut Leaves(&leaves), 5, 8).unwrap(), incl);
        assert!(verify_inclusion(5, 8, &leaves[5], &incl, &h(roots[7])));
        assert!(!verify_inclusion(4, 8, &leaves[5], &incl, &h(roots[7])));
        assert!(verify_inclusion(
            2,
            3,
            &leaves[2],
            &[h(roots[1])],
            &h(roots[2])
        ));
        let cons = [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ];
        assert_eq!(consistency_path(&mut Leaves(&leaves), 6, 8).unwrap(), cons);
        assert!(verify_consistency(6, 8, &h(roots[5]), &h(roots[7]), &cons));
        assert!(!verify_consistency(6, 8, &h(roots[4]), &h(roots[7]), &cons));
        let cons25 = [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ];
        assert_eq!(
            consistency_path(&mut Leaves(&leaves), 2, 5).unwrap(),
            cons25
        );
        assert!(verify_consistency(
            2,
            5,
            &h(roots[1]),
            &h(roots[4]),
            &cons25
        ));
    }

    #[test]
    fn bad_sizes_are_refused() {
        let all = leaves(4);
        let root = mth(&all);
        assert!(!verify_inclusion(4, 4, &all[0], &[], &root));
        assert!(!verify_consistency(5, 4, &root, &root, &[]));
        assert!(!verify_consistency(0, 4, &root, &root, &[]));
        assert!(verify_consistency(0, 4, &empty_root(), &root, &[]));
        assert!(!verify_consistency(4, 4, &root, &root, &[root]));
    }
}
