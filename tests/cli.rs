//! The `mathblocks` binary as a user runs it: train on a small MNIST-layout folder, evaluate,
//! predict, metrics JSON, iris, and one clear error (no panic, no stray file) for bad input.

use assert_cmd::Command;
use mathblocks::data::{idx, mnist};
use std::path::Path;

/// A small MNIST-layout folder (first 600 train / 200 test images of the shipped MNIST).
fn small_mnist(dir: &Path) {
    let m = mnist::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist"
    )))
    .unwrap();
    for (prefix, set, n) in [("train", &m.train, 600), ("t10k", &m.test, 200)] {
        let pixels: Vec<u8> = set.x[..n * 784]
            .iter()
            .map(|&v| (v * 255.0).round() as u8)
            .collect();
        let labels: Vec<u8> = set.y[..n].iter().map(|&l| l as u8).collect();
        let mut f = std::fs::File::create(dir.join(format!("{prefix}-images-idx3-ubyte"))).unwrap();
        idx::write(&mut f, &[n, 28, 28], &pixels).unwrap();
        let mut f = std::fs::File::create(dir.join(format!("{prefix}-labels-idx1-ubyte"))).unwrap();
        idx::write(&mut f, &[n], &labels).unwrap();
    }
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("mathblocks").unwrap();
    c.env("RAYON_NUM_THREADS", "2");
    c
}

/// `mathblocks predict` of the test examples `index` with the given weights and data folder.
fn predict(model: &Path, data: &Path, index: &str) -> std::process::Output {
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    bin()
        .args(["predict", "--model", m, "--data", d, "--index", index])
        .output()
        .unwrap()
}

/// The `test_accuracy=` value of `train`'s summary line.
fn test_accuracy(summary: &str) -> f64 {
    let field = summary
        .split("test_accuracy=")
        .nth(1)
        .expect("test_accuracy= in the summary");
    field.split(' ').next().unwrap().parse().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn train_evaluate_predict_and_metrics_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    small_mnist(&data);
    let model = tmp.path().join("m.safetensors");
    let json = tmp.path().join("metrics.json");
    let out = bin()
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "3",
            "--hidden",
            "64",
            "--batch-size",
            "32",
        ])
        .args([
            "--validation-split",
            "0.1",
            "--save",
            model.to_str().unwrap(),
            "--metrics-json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Epoch 3/3") && text.contains("val_accuracy"),
        "{text}"
    );
    assert!(text.contains("test[9]: predicted"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("test_loss=")
            && last.contains(" test_accuracy=")
            && last.contains(" train_seconds="),
        "{last}"
    );
    let acc = test_accuracy(last);
    assert!(acc > 0.7, "600 images, 3 epochs: accuracy {acc}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["history"].as_array().unwrap().len(), 3);
    assert!((doc["test_accuracy"].as_f64().unwrap() - acc).abs() < 1e-4);
    assert!(doc["history"][2]["val_loss"].as_f64().is_some());

    let out = bin()
        .args([
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stdout(&out).contains(&format!("test_accuracy={acc:.6}")),
        "{} vs {acc}",
        stdout(&out)
    );

    let out = predict(&model, &data, "3..6");
    assert!(out.status.success());
    let t = stdout(&out);
    assert_eq!(t.lines().count(), 3, "{t}");
    assert!(t.starts_with("test[3]: predicted"), "{t}");

    let out = predict(&model, &data, "200");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("past the test set") && !err.contains("panicked"),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no temporary files left: {names:?}");
}

#[test]
fn iris_reaches_93_percent() {
    let out = bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["train", "--dataset", "iris"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    let acc = test_accuracy(last);
    assert!(acc >= 0.93, "iris test accuracy {acc}\n{text}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("w.safetensors");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["train", "--batch-size", "0"], 2, "batch-size"),
        (vec!["train", "--epochs", "0"], 2, "epochs"),
        (vec!["train", "--lr", "-1"], 2, "positive"),
        (vec!["train", "--lr", "NaN"], 2, "positive"),
        (vec!["train", "--hidden", "0"], 2, "hidden"),
        (vec!["train", "--validation-split", "1"], 2, "[0, 1)"),
        (vec!["train", "--optimizer", "lbfgs"], 2, "lbfgs"),
        (vec!["train", "--threads", "0"], 2, "threads"),
        (vec!["train", "--data", "/no/such/dir"], 1, "/no/such/dir"),
        (
            vec![
                "evaluate",
                "--model",
                "/no/such.safetensors",
                "--data",
                "/no/such/dir",
            ],
            1,
            "/no/such/dir",
        ),
    ];
    for (args, code, needle) in cases {
        let mut all = args.clone();
        all.extend(
            ["--save", out_file.to_str().unwrap()]
                .iter()
                .filter(|_| args[0] == "train"),
        );
        let out = bin().args(&all).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!out_file.exists(), "{args:?} left an output file");
    }
    // A checkpoint that is not one.
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let out = bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["evaluate", "--model", junk.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("junk.safetensors") && !err.contains("panicked"),
        "{err}"
    );
}
