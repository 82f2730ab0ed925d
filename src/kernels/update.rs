//! Optimiser update kernels: Keras's SGD (momentum, Nesterov), RMSprop and Adam rules over
//! flat parameter, gradient and state slices of equal length.
//!
//! The square roots and divisions of RMSprop and Adam bound these loops. The compiler
//! vectorises them for the instruction set it targets, which by default is SSE (four lanes),
//! so on CPUs with AVX2 the same loops are compiled again for eight lanes and chosen at run
//! time. Both builds do the same IEEE operations in the same order (Rust never fuses a
//! multiply and an add on its own), so results are bit-identical on every path.

use super::check_len;
#[cfg(target_arch = "x86_64")]
use super::gemm::kernel::{Isa, isa};
use super::gemm::params::UPDATE_PARALLEL_MIN;

/// Checks that every slice has at least `params.len()` elements (extra ones are ignored).
fn check(name: &str, params: usize, slices: &[(&str, usize)]) {
    for &(arg, len) in slices {
        check_len(name, arg, len, params, "params.len()");
    }
}

/// The signature every update body shares: params, gradients, two state slices (empty when
/// unused), four constants and a flag.
type Body = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], [f32; 4], bool);

/// Compiles `$body` a second time with AVX2 enabled, and runs whichever build this CPU takes
/// on each part of the slices (see [`split`]).
macro_rules! dispatch {
    ($body:ident($p:expr, $g:expr, $s1:expr, $s2:expr, $c:expr, $flag:expr)) => {{
        /// # Safety
        /// The CPU supports AVX2.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn avx2_build(
            p: &mut [f32],
            g: &[f32],
            s1: &mut [f32],
            s2: &mut [f32],
            c: [f32; 4],
            flag: bool,
        ) {
            $body(p, g, s1, s2, c, flag)
        }
        fn run(p: &mut [f32], g: &[f32], s1: &mut [f32], s2: &mut [f32], c: [f32; 4], flag: bool) {
            #[cfg(target_arch = "x86_64")]
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                // SAFETY: isa() only reports paths this CPU supports, and both imply AVX2.
                return unsafe { avx2_build(p, g, s1, s2, c, flag) };
            }
            $body(p, g, s1, s2, c, flag)
        }
        split(run, $p, $g, $s1, $s2, $c, $flag)
    }};
}

/// Splits a state slice at `mid`; an unused (empty) one stays empty in both halves.
fn halve(s: &mut [f32], mid: usize) -> (&mut [f32], &mut [f32]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(mid)
    }
}

/// Runs `run` over the slices, halved recursively over rayon's threads while a part holds
/// at least [`UPDATE_PARALLEL_MIN`] parameters. Every element is updated by itself, so the
/// result does not depend on the split.
fn split(
    run: Body,
    p: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
    c: [f32; 4],
    flag: bool,
) {
    let n = p.len();
    if n < 2 * UPDATE_PARALLEL_MIN || crate::kernels::threads() < 2 {
        return run(p, g, s1, s2, c, flag);
    }
    let mid = n / 2;
    let (pa, pb) = p.split_at_mut(mid);
    let (ga, gb) = g.split_at(mid);
    let ((s1a, s1b), (s2a, s2b)) = (halve(s1, mid), halve(s2, mid));
    rayon::join(
        || split(run, pa, ga, s1a, s2a, c, flag),
        || split(run, pb, gb, s1b, s2b, c, flag),
    );
}

#[inline(always)]
fn sgd_body(p: &mut [f32], g: &[f32], v: &mut [f32], _: &mut [f32], c: [f32; 4], nesterov: bool) {
    let [lr, momentum, ..] = c;
    if momentum == 0.0 {
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * g;
        }
        return;
    }
    for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - lr * g;
        *p += if nesterov { momentum * *v - lr * g } else { *v };
    }
}

/// Elements per block of the RMSprop update that may skip its square roots and divisions.
const RMSPROP_BLOCK: usize = 64;

#[inline(always)]
fn rmsprop_body(p: &mut [f32], g: &[f32], a: &mut [f32], _: &mut [f32], c: [f32; 4], _: bool) {
    let [lr, rho, epsilon, _] = c;
    let n = p.len();
    let (p, g, a) = (p, &g[..n], &mut a[..n]);
    // The square root and the division bound this loop. Where a whole block's gradient is
    // +0.0 (the weights of inputs that are zero across a batch: a third of the first layer's
    // on MNIST), `lr·g / sqrt(a + epsilon)` is +0.0 for every `a + epsilon > 0`, and
    // subtracting +0.0 leaves any `p` as it is, -0.0 and NaN included; so the block updates
    // only `a`, with the same bits as the full rule. A negative, zero or NaN `lr` always
    // takes the full rule.
    let may_skip = lr > 0.0;
    let blocks = n / RMSPROP_BLOCK * RMSPROP_BLOCK;
    for ((p, g), a) in p[..blocks]
        .chunks_exact_mut(RMSPROP_BLOCK)
        .zip(g[..blocks].chunks_exact(RMSPROP_BLOCK))
        .zip(a[..blocks].chunks_exact_mut(RMSPROP_BLOCK))
    {
        if may_skip && g.iter().fold(0u32, |acc, v| acc | v.to_bits()) == 0 {
            for (a, &g) in a.iter_mut().zip(g) {
                *a = rho * *a + (1.0 - rho) * g * g;
            }
            if a.iter().fold(true, |ok, &a| ok & (a + epsilon > 0.0)) {
                continue;
            }
            for ((p, &g), &a) in p.iter_mut().zip(g).zip(a.iter()) {
                *p -= lr * g / (a + epsilon).sqrt();
            }
            continue;
        }
        for ((p, &g), a) in p.iter_mut().zip(g).zip(a.iter_mut()) {
            *a = rho * *a + (1.0 - rho) * g * g;
            *p -= lr * g / (*a + epsilon).sqrt();
        }
    }
    for ((p, &g), a) in p[blocks..]
        .iter_mut()
        .zip(&g[blocks..])
        .zip(&mut a[blocks..])
    {
        *a = rho * *a + (1.0 - rho) * g * g;
        *p -= lr * g / (*a + epsilon).sqrt();
    }
}

#[inline(always)]
fn adam_body(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: [f32; 4], _: bool) {
    let [step, beta1, beta2, epsilon] = c;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (1.0 - beta1) * (g - *m);
        *v += (1.0 - beta2) * (g * g - *v);
        *p -= step * *m / (v.sqrt() + epsilon);
    }
}

/// Keras SGD: with `momentum == 0`, `p -= lr·g` (velocity untouched); else
/// `v = momentum·v - lr·g` and `p += v`, or `p += momentum·v - lr·g` with Nesterov.
///
/// # Panics
/// If `grads` or `velocity` is shorter than `params` (message names `sgd_update`).
pub fn sgd_update(
    params: &mut [f32],
    grads: &[f32],
    velocity: &mut [f32],
    lr: f32,
    momentum: f32,
    nesterov: bool,
) {
    let n = params.len();
    check(
        "sgd_update",
        n,
        &[("grads", grads.len()), ("velocity", velocity.len())],
    );
    dispatch!(sgd_body(
        params,
        grads,
        velocity,
        &mut [],
        [lr, momentum, 0.0, 0.0],
        nesterov
    ))
}

/// Keras RMSprop (not centred, no momentum): `a = rho·a + (1 - rho)·g²`,
/// `p -= lr·g / sqrt(a + epsilon)`, with `a` the running average of squared gradients.
///
/// # Panics
/// If `grads` or `sq_avg` is shorter than `params` (message names `rmsprop_update`).
pub fn rmsprop_update(
    params: &mut [f32],
    grads: &[f32],
    sq_avg: &mut [f32],
    lr: f32,
    rho: f32,
    epsilon: f32,
) {
    let n = params.len();
    check(
        "rmsprop_update",
        n,
        &[("grads", grads.len()), ("sq_avg", sq_avg.len())],
    );
    dispatch!(rmsprop_body(
        params,
        grads,
        sq_avg,
        &mut [],
        [lr, rho, epsilon, 0.0],
        false
    ))
}

/// Keras Adam, one step: `m += (1 - beta1)(g - m)`, `v += (1 - beta2)(g² - v)`,
/// `p -= step·m / (sqrt(v) + epsilon)`, where the caller passes the bias-corrected step size
/// `step = lr·sqrt(1 - beta2^t) / (1 - beta1^t)` for step number t (1-based).
///
/// # Panics
/// If `grads`, `m` or `v` is shorter than `params` (message names `adam_update`).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
) {
    let n = params.len();
    check(
        "adam_update",
        n,
        &[("grads", grads.len()), ("m", m.len()), ("v", v.len())],
    );
    dispatch!(adam_body(
        params,
        grads,
        m,
        v,
        [step, beta1, beta2, epsilon],
        false
    ))
}
