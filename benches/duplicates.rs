//! Near-duplicate photos (`cargo bench --bench duplicates`): how far apart the perceptual hashes
//! of `domain::duplicates` put the same receipt photographed twice (another angle, light,
//! table, distance and orientation), against different receipts of the same shop (one layout,
//! one header, other items and totals). Each photo is a 12 MP phone-like JPEG of the corpus
//! (`support/corpus.rs`) normalized as the pipeline does (Claude's family, economy policy), so
//! the hash sees what the index sees.
//!
//! Two sets, never mixed: the **tuning** set (three monospace and condensed receipts of each of
//! the four shops) chooses the threshold; the **check** set (two receipts a shop in proportional
//! fonts, taken under other conditions) only reports what that threshold does. Prints a table
//! of thresholds for several hashers, each pair's distance for the one the pipeline uses, and:
//!
//! `duplicates: set=S hasher=H pairs=P same_receipt_max=A other_receipt_min=B threshold=T recall=R false_positives=F/N`

// The corpus is shared with other benches; this one uses its drawing and photographing only.
#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;

use corpus::{Photo, Shot};
use image_hasher::{HashAlg, HasherConfig};
use shared::domain::duplicates::{grey, HASH_SIDE, NEAR_DISTANCE};
use shared::domain::family::Claude;
use shared::domain::normalize::{normalize, Policy, Target};

/// One receipt photographed twice, as the index sees each photo: its normalized copy.
struct Pair {
    shop: String,
    seed: u64,
    first: Copy,
    again: Copy,
}

/// A normalized copy's grey pixels and its size (the receipt's shape, once straightened).
struct Copy {
    grey: image::GrayImage,
    size: (u32, u32),
}

/// `count` seeds a shop, from `from` on, for each of the four shops.
fn seeds_by_shop(from: u64, count: usize) -> Vec<(String, u64)> {
    let mut by_shop: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for seed in from.. {
        let shop = corpus::receipt(10, seed).merchant;
        let list = by_shop.entry(shop).or_default();
        if list.len() < count {
            list.push(seed);
        }
        if by_shop.len() == 4 && by_shop.values().all(|l| l.len() == count) {
            break;
        }
    }
    by_shop
        .into_iter()
        .flat_map(|(shop, seeds)| seeds.into_iter().map(move |s| (shop.clone(), s)))
        .collect()
}

/// The set's pairs. A shop prints every receipt in one font (one printer): the tuning set's
/// shops in the monospace and condensed faces, the check set's in the three others.
fn pairs(check: bool) -> Vec<Pair> {
    let (from, count, fonts): (u64, usize, &[usize]) = if check {
        (500, 2, &[1, 3, 4])
    } else {
        (1, 3, &[0, 2])
    };
    let shops: Vec<String> = seeds_by_shop(from, 1).into_iter().map(|(s, _)| s).collect();
    seeds_by_shop(from, count)
        .into_iter()
        .map(|(shop, seed)| {
            let n = shops.iter().position(|s| *s == shop).expect("a shop");
            let (a, b) = corpus::photographed_twice(seed, fonts[n % fonts.len()], check);
            let set = if check { "check" } else { "tuning" };
            Pair {
                first: copy_of(&a, &format!("{set}-{seed}-first")),
                again: copy_of(&b, &format!("{set}-{seed}-again")),
                shop,
                seed,
            }
        })
        .collect()
}

/// The normalized copy of `shot` photographed at 12 MP, as the index hashes it; kept in
/// `target/duplicates-bench/` (drawing and photographing take most of the time), so a run
/// that only changes a hasher reads them back.
fn copy_of(shot: &Shot, name: &str) -> Copy {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/duplicates-bench");
    let path = dir.join(format!("{name}.jpg"));
    let jpeg = std::fs::read(&path).unwrap_or_else(|_| {
        let photo: Photo = corpus::photograph(shot, 4032);
        let target = Target::for_family(&Claude, Policy::Economy);
        let n = normalize(&photo.bytes, target).expect("copy");
        std::fs::create_dir_all(&dir).expect("cache dir");
        std::fs::write(&path, &n.jpeg).expect("cache");
        n.jpeg
    });
    let grey = grey(&jpeg).expect("grey");
    let size = shared::domain::normalize::dimensions(&jpeg).expect("size");
    Copy { grey, size }
}

/// The pipeline's hash as `image_hasher` configures it: `domain::duplicates::double_gradient`
/// gives the same bits (held by its test), so the crate's other hashers compare with it here.
fn hasher() -> image_hasher::Hasher {
    HasherConfig::new()
        .hash_size(HASH_SIDE, HASH_SIDE)
        .hash_alg(HashAlg::DoubleGradient)
        .to_hasher()
}

/// The hashers compared: the pipeline's first.
fn hashers() -> Vec<(&'static str, image_hasher::Hasher)> {
    let cfg = |side, alg, dct: bool| {
        let c = HasherConfig::new().hash_size(side, side).hash_alg(alg);
        if dct {
            c.preproc_dct().to_hasher()
        } else {
            c.to_hasher()
        }
    };
    vec![
        ("pipeline", hasher()),
        ("gradient-8", cfg(8, HashAlg::Gradient, false)),
        ("mean-16", cfg(16, HashAlg::Mean, false)),
        ("dct-mean-8", cfg(8, HashAlg::Mean, true)),
        (
            "dct-double-gradient-16",
            cfg(16, HashAlg::DoubleGradient, true),
        ),
        ("gradient-16", cfg(16, HashAlg::Gradient, false)),
        ("blockhash-16", cfg(16, HashAlg::Blockhash, false)),
        (
            "double-gradient-16",
            cfg(16, HashAlg::DoubleGradient, false),
        ),
        (
            "double-gradient-64",
            cfg(64, HashAlg::DoubleGradient, false),
        ),
        ("gradient-32", cfg(32, HashAlg::Gradient, false)),
    ]
}

/// (same-receipt distances, different-receipt same-shop distances) under `h`.
fn distances(set: &[Pair], h: &image_hasher::Hasher) -> (Vec<u32>, Vec<u32>) {
    let hashes: Vec<_> = set
        .iter()
        .map(|p| (h.hash_image(&p.first.grey), h.hash_image(&p.again.grey)))
        .collect();
    let same = hashes.iter().map(|(a, b)| a.dist(b)).collect();
    let mut other = Vec::new();
    for i in 0..set.len() {
        for j in 0..set.len() {
            if i != j && set[i].shop == set[j].shop {
                // Every photo of receipt i against every photo of receipt j of the same shop.
                let (a, b) = (&hashes[i], &hashes[j]);
                other.extend([
                    a.0.dist(&b.0),
                    a.0.dist(&b.1),
                    a.1.dist(&b.0),
                    a.1.dist(&b.1),
                ]);
            }
        }
    }
    (same, other)
}

/// Each hasher's distances on `set`: its threshold is the tuned one from `chosen` (the
/// pipeline's is `NEAR_DISTANCE`), or on the tuning set the largest with no false positive.
/// Returns the thresholds used, by hasher.
fn report(
    name: &str,
    set: &[Pair],
    chosen: Option<&std::collections::HashMap<&'static str, u32>>,
) -> std::collections::HashMap<&'static str, u32> {
    let mut used = std::collections::HashMap::new();
    for (hname, h) in hashers() {
        let (same, other) = distances(set, &h);
        let other_min = other.iter().copied().min().unwrap_or(u32::MAX);
        let same_max = same.iter().copied().max().unwrap_or(0);
        // The largest threshold with no false positive: one below the nearest other receipt.
        let t = match chosen {
            Some(_) if hname == "pipeline" => NEAR_DISTANCE,
            Some(c) => c[hname],
            None => other_min.saturating_sub(1),
        };
        used.insert(hname, t);
        let recall = same.iter().filter(|d| **d <= t).count();
        let fp = other.iter().filter(|d| **d <= t).count();
        println!(
            "duplicates: set={name} hasher={hname} pairs={} same_receipt_max={same_max} other_receipt_min={other_min} threshold={t} recall={:.3} false_positives={fp}/{}",
            same.len(),
            recall as f64 / same.len() as f64,
            other.len()
        );
        if hname == "pipeline" {
            for (p, d) in set.iter().zip(&same) {
                println!(
                    "  {name} {:<20} seed {:>4}: same receipt at {d}",
                    p.shop, p.seed
                );
            }
        }
    }
    used
}

/// How far apart two copies' shapes are: |ln| of the ratio of their aspect ratios (0: the same
/// shape; a straightened receipt keeps its shape from photo to photo, a longer one does not).
fn shape_gap(a: (u32, u32), b: (u32, u32)) -> f64 {
    let ar = |(w, h): (u32, u32)| f64::from(w.min(h)) / f64::from(w.max(h));
    (ar(a) / ar(b)).ln().abs()
}

/// The shape gaps: the same receipt's two photos, and different receipts of one shop.
fn shapes(name: &str, set: &[Pair]) {
    let same: Vec<f64> = set
        .iter()
        .map(|p| shape_gap(p.first.size, p.again.size))
        .collect();
    let mut other = Vec::new();
    for (i, p) in set.iter().enumerate() {
        for q in set.iter().skip(i + 1).filter(|q| q.shop == p.shop) {
            for (a, b) in [
                (&p.first, &q.first),
                (&p.first, &q.again),
                (&p.again, &q.first),
                (&p.again, &q.again),
            ] {
                other.push(shape_gap(a.size, b.size));
            }
        }
    }
    let same_max = same.iter().copied().fold(0.0, f64::max);
    let closer = other.iter().filter(|g| **g <= same_max).count();
    println!(
        "duplicates: set={name} shape_gap same_receipt_max={same_max:.3} other_receipt_min={:.3} other_within_same_max={closer}/{}",
        other.iter().copied().fold(f64::MAX, f64::min),
        other.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tuning = pairs(false);
    let tuned = report("tuning", &tuning, None);
    shapes("tuning", &tuning);
    let bits = hasher().hash_image(&tuning[0].first.grey).as_bytes().len() * 8;
    println!(
        "tuning set: the pipeline's hash has {bits} bits; the largest threshold with no false positive is {}; NEAR_DISTANCE is {NEAR_DISTANCE}",
        tuned["pipeline"]
    );
    let check = pairs(true);
    report("check", &check, Some(&tuned));
    shapes("check", &check);
}
