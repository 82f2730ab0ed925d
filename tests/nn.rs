//! The model layer: optimiser rules pinned to hand-computed values, the fused backward pass
//! against finite differences, checkpoints, and a training smoke test on real MNIST.

use mathblocks::data::{Dataset, mnist};
use mathblocks::kernels;
use mathblocks::nn::{
    Act, Dense, FitConfig, Loss, OptState, Optimizer, Sequential, TrainError, checkpoint,
};
use std::path::Path;

fn steps(opt: Optimizer, grads: &[f32]) -> Vec<f32> {
    let mut p = vec![1.0f32];
    let mut st = OptState::new(opt, 1);
    grads
        .iter()
        .map(|&g| {
            st.step(&mut p, &[g]);
            p[0]
        })
        .collect()
}

fn close(got: &[f32], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn optimiser_updates_match_hand_computed_values() {
    // p0 = 1, g = 0.5 each step; values worked by hand from the Keras update rules.
    // SGD lr 0.1: 1 - 0.05 = 0.95, then 0.90.
    close(
        &steps(
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.0,
                nesterov: false,
            },
            &[0.5, 0.5],
        ),
        &[0.95, 0.90],
    );
    // Momentum 0.9: v1 = -0.05 -> 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095 -> 0.855.
    close(
        &steps(
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: false,
            },
            &[0.5, 0.5],
        ),
        &[0.95, 0.855],
    );
    // Nesterov: v1 = -0.05, p += 0.9 * v1 - 0.05 = -0.095 -> 0.905;
    // v2 = -0.095, p += 0.9 * -0.095 - 0.05 = -0.1355 -> 0.7695.
    close(
        &steps(
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
            },
            &[0.5, 0.5],
        ),
        &[0.905, 0.7695],
    );
    // RMSprop: a1 = 0.1 * 0.25 = 0.025, p -= 0.001 * 0.5 / sqrt(0.025 + 1e-7) = 0.00316227;
    // a2 = 0.0475, p -= 0.0005 / sqrt(0.0475001) = 0.00229416.
    close(
        &steps(Optimizer::rmsprop(), &[0.5, 0.5]),
        &[0.996_837_7, 0.994_543_6],
    );
    // Adam: m1 = 0.05, v1 = 0.00025, alpha = 0.001 * sqrt(0.001) / 0.1; step = alpha * m / (sqrt(v) +
    // 1e-7) = 0.00099999 -> 0.999. Step 2: m = 0.095, v = 0.00049975, alpha = 0.001 *
    // sqrt(0.001999) / 0.19 = 0.000235317; step = 0.000235317 * 0.095 / 0.0223551 = 0.00099999.
    close(&steps(Optimizer::adam(), &[0.5, 0.5]), &[0.999, 0.998]);
}

fn toy(n: usize, features: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = mathblocks::rng::Rng::new(seed);
    let x = (0..n * features).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y = (0..n).map(|_| rng.below(classes) as u32).collect();
    Dataset {
        x,
        y,
        n,
        features,
        classes,
    }
}

/// Central differences of the mean loss against the analytic gradient, for every parameter.
/// With `sparse`, three in four inputs are zero, so the first layer runs on the sparse-input
/// kernels.
fn check_gradients(layers: &[Dense], loss: Loss, sparse: bool) {
    let data = if sparse {
        sparse_toy(6, 5, 4, 11)
    } else {
        toy(6, 5, 4, 11)
    };
    let on_sparse_path = kernels::nonzero_fraction(&data.x) <= kernels::params::SPARSE_MAX_DENSITY;
    assert_eq!(
        on_sparse_path, sparse,
        "the data must take the path under test"
    );
    let mut model = Sequential::new(5, layers, loss, 3).unwrap();
    // Non-zero biases so relu kinks are not all at the same place.
    let nb: Vec<usize> = model.layers().iter().map(|l| l.b_off).collect();
    for (i, off) in nb.into_iter().enumerate() {
        for j in 0..model.layers()[i].out_dim {
            model.params_mut()[off + j] = 0.05 * (j as f32 - 1.5);
        }
    }
    let mut ws = model.workspace(6);
    model.compute_gradients(&data.x, &data.y, 6, &mut ws);
    let analytic = Sequential::grads(&ws).to_vec();
    // Small enough that no relu input crosses zero within ±h on this data (1e-2 does).
    let h = 1e-3f32;
    let mut worst = 0f32;
    for (i, &want) in analytic.iter().enumerate() {
        let orig = model.params()[i];
        model.params_mut()[i] = orig + h;
        let up = model.evaluate(&data).0;
        model.params_mut()[i] = orig - h;
        let down = model.evaluate(&data).0;
        model.params_mut()[i] = orig;
        let numeric = (up - down) / (2.0 * h);
        let err = (numeric - want).abs() / (want.abs().max(numeric.abs()) + 1e-2);
        worst = worst.max(err);
        assert!(
            err < 3e-2,
            "param {i}: analytic {} numeric {numeric} ({loss:?}, sparse {sparse})",
            analytic[i]
        );
    }
    assert!(worst < 3e-2);
}

#[test]
fn backward_pass_matches_finite_differences() {
    let net = [
        Dense::new(7, Act::Relu),
        Dense::new(6, Act::Relu),
        Dense::new(4, Act::Softmax),
    ];
    for sparse in [false, true] {
        check_gradients(&net, Loss::SparseCategoricalCrossentropy, sparse);
        check_gradients(&net, Loss::MeanSquaredError, sparse);
        check_gradients(
            &[Dense::new(8, Act::Relu), Dense::new(4, Act::Linear)],
            Loss::MeanSquaredError,
            sparse,
        );
    }
}

#[test]
fn checkpoint_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = Sequential::new(
        5,
        &[Dense::new(3, Act::Relu), Dense::new(2, Act::Softmax)],
        Loss::SparseCategoricalCrossentropy,
        9,
    )
    .unwrap();
    checkpoint::save(&model, &path).unwrap();
    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back, model);
    let bytes = std::fs::read(&path).unwrap();
    let err = checkpoint::from_bytes(&bytes[..bytes.len() - 3], Path::new("cut.safetensors"))
        .unwrap_err();
    assert!(err.to_string().contains("cut.safetensors"), "{err}");
    let err = checkpoint::from_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", Path::new("x"))
        .unwrap_err();
    assert!(err.to_string().contains("not a valid safetensors"), "{err}");
    assert!(
        checkpoint::load(&dir.path().join("missing.safetensors"))
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}

#[test]
fn exploding_learning_rate_stops_with_epoch_and_step() {
    let data = toy(64, 5, 3, 1);
    let mut model = Sequential::new(
        5,
        &[Dense::new(16, Act::Relu), Dense::new(3, Act::Softmax)],
        Loss::SparseCategoricalCrossentropy,
        1,
    )
    .unwrap();
    let cfg = FitConfig {
        epochs: 50,
        batch_size: 8,
        seed: 0,
        shuffle: true,
    };
    let r = model.fit(
        &data,
        None,
        &cfg,
        Optimizer::Sgd {
            lr: 1e30,
            momentum: 0.0,
            nesterov: false,
        },
        |_| true,
        |_, _| {},
    );
    match r {
        Err(TrainError::NonFinite {
            epoch, step, lr, ..
        }) => {
            assert!(epoch >= 1 && step >= 1 && lr == 1e30);
        }
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
}

#[test]
fn mnist_subset_trains_above_85_percent() {
    let m = mnist::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist"
    )))
    .unwrap();
    assert_eq!((m.train.n, m.test.n, m.train.features), (60000, 10000, 784));
    let train = m.train.head(2000);
    let test = m.test.head(1000);
    let mut model = Sequential::new(
        784,
        &[Dense::new(128, Act::Relu), Dense::new(10, Act::Softmax)],
        Loss::SparseCategoricalCrossentropy,
        0,
    )
    .unwrap();
    let cfg = FitConfig {
        epochs: 5,
        batch_size: 64,
        seed: 0,
        shuffle: true,
    };
    let hist = model
        .fit(
            &train,
            Some(&test),
            &cfg,
            Optimizer::rmsprop(),
            |_| true,
            |_, _| {},
        )
        .unwrap();
    assert_eq!(hist.len(), 5);
    assert!(hist[4].loss < hist[0].loss, "loss falls: {hist:?}");
    let (_, acc) = model.evaluate(&test);
    assert!(acc > 0.85, "test accuracy {acc}");
    assert_eq!(hist[4].val_accuracy, Some(acc));
    let probs = model.predict(&test.x[..784 * 3], 3);
    for row in probs.chunks(10) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

/// `toy` data with three in four inputs zeroed (so the first layer takes the sparse kernels).
fn sparse_toy(n: usize, features: usize, classes: usize, seed: u64) -> Dataset {
    let mut d = toy(n, features, classes, seed);
    for (i, v) in d.x.iter_mut().enumerate() {
        if i % 4 != 1 {
            *v = 0.0;
        }
    }
    d
}

#[test]
fn a_fit_step_applies_the_whole_batch_gradient() {
    // fit trains the two halves of a batch side by side and adds their gradients; one plain
    // SGD step over one batch of all the data must move every parameter by -lr times the
    // gradient of the whole batch.
    for (n, data) in [(37, toy(37, 6, 3, 5)), (36, sparse_toy(36, 6, 3, 6))] {
        let layers = [Dense::new(9, Act::Relu), Dense::new(3, Act::Softmax)];
        let mut model =
            Sequential::new(6, &layers, Loss::SparseCategoricalCrossentropy, 2).unwrap();
        let mut ws = model.workspace(n);
        model.compute_gradients(&data.x, &data.y, n, &mut ws);
        let grad = Sequential::grads(&ws).to_vec();
        let before = model.params().to_vec();
        let lr = 0.5;
        let cfg = FitConfig {
            epochs: 1,
            batch_size: n,
            seed: 0,
            shuffle: false,
        };
        let opt = Optimizer::Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
        };
        model
            .fit(&data, None, &cfg, opt, |_| true, |_, _| {})
            .unwrap();
        for (i, ((&b, &a), &g)) in before.iter().zip(model.params()).zip(&grad).enumerate() {
            let want = b - lr * g;
            assert!(
                (a - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "parameter {i} ({n} rows): {a} after the step, {want} expected"
            );
        }
    }
}

#[test]
fn fit_gives_the_same_bits_on_one_and_two_threads() {
    let run = |threads: usize, data: &Dataset| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let layers = [Dense::new(16, Act::Relu), Dense::new(4, Act::Softmax)];
        let mut model =
            Sequential::new(8, &layers, Loss::SparseCategoricalCrossentropy, 4).unwrap();
        let cfg = FitConfig {
            epochs: 2,
            batch_size: 25,
            seed: 3,
            shuffle: true,
        };
        pool.install(|| {
            model
                .fit(data, None, &cfg, Optimizer::rmsprop(), |_| true, |_, _| {})
                .unwrap()
        });
        model
            .params()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    };
    for data in [toy(103, 8, 4, 7), sparse_toy(103, 8, 4, 8)] {
        assert!(run(1, &data) == run(2, &data), "1 and 2 threads differ");
    }
}

#[test]
fn predict_in_halves_matches_one_row_at_a_time() {
    // From INFER_HALVES_MIN_ROWS rows on, a chunk's two halves run side by side; one row at a
    // time runs in one piece. Both must give the same probabilities, on dense and sparse data.
    for data in [toy(150, 8, 4, 9), sparse_toy(150, 8, 4, 10)] {
        let layers = [Dense::new(16, Act::Relu), Dense::new(4, Act::Softmax)];
        let model = Sequential::new(8, &layers, Loss::SparseCategoricalCrossentropy, 5).unwrap();
        let all = model.predict(&data.x, data.n);
        for r in 0..data.n {
            let one = model.predict(&data.x[r * 8..(r + 1) * 8], 1);
            for (j, (&a, &b)) in all[r * 4..(r + 1) * 4].iter().zip(&one).enumerate() {
                assert!((a - b).abs() <= 1e-6, "row {r}, class {j}: {a} vs {b}");
            }
        }
        // evaluate agrees with the predictions it is made of.
        let correct = (0..data.n)
            .filter(|&r| {
                let row = &all[r * 4..(r + 1) * 4];
                let best = (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                best as u32 == data.y[r]
            })
            .count();
        let (_, acc) = model.evaluate(&data);
        assert!(
            (acc - correct as f32 / data.n as f32).abs() < 1e-6,
            "evaluate's accuracy"
        );
    }
}
