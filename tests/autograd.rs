//! The Tape: the seed's three gradients exactly, tape rules, every op against finite
//! differences, and the model's hand-written backward pass against the tape.

use mathblocks::autograd::{Tape, TapeError, Var};
use mathblocks::nn::{Act, Dense, Loss, Sequential};
use mathblocks::rng::Rng;
use mathblocks::tensor::Tensor;

#[test]
fn seed_gradients_are_exact() {
    let tape = Tape::persistent();
    let x = tape.watch(3.0);
    let y = x.mul(&x).unwrap();
    let z = y.mul(&y).unwrap();
    assert_eq!(tape.gradient(&y, &x).unwrap().item().unwrap(), 6.0);
    assert_eq!(tape.gradient(&z, &x).unwrap().item().unwrap(), 108.0);
    assert_eq!(tape.gradient(&z, &y).unwrap().item().unwrap(), 18.0);
    assert_eq!(z.value().item().unwrap(), 81.0);
}

#[test]
fn tape_rules() {
    // A non-persistent tape answers once.
    let tape = Tape::new();
    let x = tape.watch(2.0);
    let y = x.exp();
    assert!(tape.gradient(&y, &x).is_ok());
    assert_eq!(tape.gradient(&y, &x).unwrap_err(), TapeError::Consumed);
    // A source the target does not depend on gets zeros of its shape.
    let tape = Tape::persistent();
    let a = tape.watch(Tensor::ones(&[2, 3]));
    let b = tape.watch(Tensor::ones(&[2]));
    let s = a.sum();
    assert_eq!(tape.gradient(&s, &b).unwrap(), Tensor::zeros(&[2]));
    // Variables of two tapes do not mix.
    let other = Tape::new();
    let c = other.watch(1.0);
    assert_eq!(a.add(&c).unwrap_err(), TapeError::OtherTape);
    assert_eq!(tape.gradient(&c, &a).unwrap_err(), TapeError::OtherTape);
    // Shape errors are values naming the shapes.
    let e = a
        .add(&tape.watch(Tensor::ones(&[3, 2])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 3]") && e.contains("[3, 2]"), "{e}");
    assert!(matches!(
        a.softmax_cross_entropy(&[0, 7]),
        Err(TapeError::Label(_))
    ));
    assert!(a.softmax_cross_entropy(&[0]).is_err());
    // A non-scalar target is summed first: d(sum 2x)/dx = 2 everywhere.
    let two = tape.constant(Tensor::full(&[2, 3], 2.0));
    let y = a.mul(&two).unwrap();
    assert_eq!(tape.gradient(&y, &a).unwrap(), Tensor::full(&[2, 3], 2.0));
    // A variable used twice accumulates: d(x·x + x)/dx = 2x + 1.
    let x = tape.watch(Tensor::new(&[3], vec![1.0, -2.0, 0.5]).unwrap());
    let y = x.mul(&x).unwrap().add(&x).unwrap();
    assert_eq!(
        tape.gradient(&y, &x).unwrap(),
        Tensor::new(&[3], vec![3.0, -3.0, 2.0]).unwrap()
    );
}

/// Uniform in [lo, hi) for every element of `shape`.
fn rand(shape: &[usize], lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
    Tensor::random(shape, rng)
        .mul_scalar(hi - lo)
        .add_scalar(lo)
}

/// Checks the tape's gradient of `f` (a scalar) with respect to each input against central
/// differences.
fn check<F>(name: &str, inputs: &[Tensor], f: F)
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let run = |xs: &[Tensor]| {
        let tape = Tape::new();
        let vars: Vec<Var> = xs.iter().map(|x| tape.watch(x.clone())).collect();
        f(&tape, &vars).value().item().unwrap()
    };
    let tape = Tape::persistent();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.watch(x.clone())).collect();
    let out = f(&tape, &vars);
    for (i, v) in vars.iter().enumerate() {
        let g = tape.gradient(&out, v).unwrap();
        assert_eq!(g.shape(), inputs[i].shape(), "{name}: gradient shape");
        for e in 0..inputs[i].len() {
            let eps = 1e-2;
            let mut plus = inputs.to_vec();
            plus[i].data_mut()[e] += eps;
            let mut minus = inputs.to_vec();
            minus[i].data_mut()[e] -= eps;
            let fd = (run(&plus) - run(&minus)) / (2.0 * eps);
            let got = g.data()[e];
            assert!(
                (fd - got).abs() <= 1e-2 * fd.abs().max(1.0),
                "{name}: input {i} element {e}: tape {got}, finite difference {fd}"
            );
        }
    }
}

#[test]
fn every_op_against_finite_differences() {
    let mut rng = Rng::new(11);
    let w = rand(&[3, 2], -1.0, 1.0, &mut rng);
    // Weighting by w makes each element's gradient different.
    fn weighted_by<'t>(w: &Tensor, t: &'t Tape, v: Var<'t>) -> Var<'t> {
        v.mul(&t.constant(w.clone())).unwrap().sum()
    }
    let a = rand(&[3, 2], -2.0, 2.0, &mut rng);
    let b = rand(&[3, 2], -2.0, 2.0, &mut rng);
    let row = rand(&[2], -2.0, 2.0, &mut rng);
    let col = rand(&[3, 1], -2.0, 2.0, &mut rng);
    let pos = rand(&[3, 2], 0.5, 2.0, &mut rng);
    check("add", &[a.clone(), row.clone()], |t, v| {
        weighted_by(&w, t, v[0].add(&v[1]).unwrap())
    });
    check("sub", &[col.clone(), b.clone()], |t, v| {
        weighted_by(&w, t, v[0].sub(&v[1]).unwrap())
    });
    check("mul", &[a.clone(), col.clone()], |t, v| {
        weighted_by(&w, t, v[0].mul(&v[1]).unwrap())
    });
    check("div", &[a.clone(), pos.clone()], |t, v| {
        weighted_by(&w, t, v[0].div(&v[1]).unwrap())
    });
    check("exp", std::slice::from_ref(&a), |t, v| {
        weighted_by(&w, t, v[0].exp())
    });
    check("log", std::slice::from_ref(&pos), |t, v| {
        weighted_by(&w, t, v[0].log())
    });
    // Keep relu's inputs away from the kink at 0, where the difference quotient is not a
    // derivative.
    let away = a.map(|x| if x.abs() < 0.1 { x + 0.3 } else { x });
    check("relu", &[away], |t, v| weighted_by(&w, t, v[0].relu()));
    check("sum", std::slice::from_ref(&a), |_, v| {
        v[0].mul(&v[0]).unwrap().sum()
    });
    check("mean", std::slice::from_ref(&a), |_, v| v[0].exp().mean());
    let m1 = rand(&[3, 4], -1.0, 1.0, &mut rng);
    let m2 = rand(&[4, 2], -1.0, 1.0, &mut rng);
    check("matmul", &[m1, m2], |t, v| {
        weighted_by(&w, t, v[0].matmul(&v[1]).unwrap())
    });
    let logits = rand(&[4, 5], -3.0, 3.0, &mut rng);
    check("softmax_cross_entropy", &[logits], |_, v| {
        v[0].softmax_cross_entropy(&[0, 4, 2, 2]).unwrap()
    });
}

#[test]
fn model_backward_agrees_with_the_tape() {
    let mut rng = Rng::new(5);
    let (rows, inputs) = (6, 5);
    let model = Sequential::new(
        inputs,
        &[
            Dense::new(7, Act::Relu),
            Dense::new(6, Act::Relu),
            Dense::new(3, Act::Softmax),
        ],
        Loss::SparseCategoricalCrossentropy,
        3,
    )
    .unwrap();
    let x = rand(&[rows, inputs], -1.0, 1.0, &mut rng);
    let y = [0u32, 2, 1, 1, 0, 2];
    let mut ws = model.workspace(rows);
    let (loss, _) = model.compute_gradients(x.data(), &y, rows, &mut ws);
    let grads = Sequential::grads(&ws).to_vec();

    let tape = Tape::persistent();
    let mut h = tape.constant(x);
    let mut params = Vec::new();
    for (i, l) in model.layers().iter().enumerate() {
        let w = tape.watch(Tensor::new(&[l.in_dim, l.out_dim], model.kernel(i).to_vec()).unwrap());
        let b = tape.watch(Tensor::new(&[l.out_dim], model.bias(i).to_vec()).unwrap());
        h = h.matmul(&w).unwrap().add(&b).unwrap();
        if l.act == Act::Relu {
            h = h.relu();
        }
        params.push((w, l.w_off, b, l.b_off));
    }
    let tape_loss = h.softmax_cross_entropy(&y).unwrap();
    assert!((tape_loss.value().item().unwrap() - loss).abs() <= 1e-6);
    // Both sides run the same f32 kernels in a different order: agree to 1e-5 relative.
    let mut compared = 0;
    for (w, w_off, b, b_off) in params {
        for (var, off) in [(w, w_off), (b, b_off)] {
            let g = tape.gradient(&tape_loss, &var).unwrap();
            for (j, &t) in g.data().iter().enumerate() {
                let m = grads[off + j];
                assert!(
                    (t - m).abs() <= 1e-5 * t.abs().max(1e-2),
                    "parameter {}: tape {t}, model {m}",
                    off + j
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, grads.len());
    assert!(grads.iter().any(|&g| g != 0.0));
}
