//! The seed's first network, through the library (not the CLI): MNIST images reshaped to
//! (60000, 784) floats in [0, 1], Dense(512, relu) -> Dense(10, softmax), RMSprop, sparse
//! categorical cross-entropy, 5 epochs of batch 128; then `predict` on the first 10 test
//! images, `predictions[0]`, its argmax, and the test accuracy.
//! `cargo run --release --example first_network [-- MNIST_DIR [EPOCHS]]`.

use mathblocks::data::{Dataset, mnist};
use mathblocks::nn::{Act, Dense, FitConfig, Loss, Optimizer, Sequential};
use mathblocks::s;
use mathblocks::tensor::Tensor;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        PathBuf::from,
    );
    let epochs: usize = args.next().map_or(Ok(5), |e| e.parse())?;

    // (train_images, train_labels), (test_images, test_labels) = mnist.load_data()
    let m = mnist::load(&dir)?;
    let (train_labels, test_labels) = (m.train.y.clone(), m.test.y.clone());
    let (n_train, n_test) = (m.train.n, m.test.n);
    let train_images = Tensor::from(m.train).into_shape(&[n_train, 28, 28])?;
    let test_images = Tensor::from(m.test).into_shape(&[n_test, 28, 28])?;
    println!(
        "train_images {:?}, test_images {:?}",
        train_images.shape(),
        test_images.shape()
    );

    // model = keras.Sequential([Dense(512, activation="relu"), Dense(10, activation="softmax")])
    // model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", ...)
    let mut model = Sequential::new(
        28 * 28,
        &[Dense::new(512, Act::Relu), Dense::new(10, Act::Softmax)],
        Loss::SparseCategoricalCrossentropy,
        0,
    )?;

    // train_images = train_images.reshape((60000, 28 * 28)).astype("float32") / 255
    // (the loader already scales the bytes to [0, 1])
    let train_images = train_images.into_shape(&[n_train, 28 * 28])?;
    let train = Dataset::from_tensor(&train_images, &train_labels, 10)?;

    // model.fit(train_images, train_labels, epochs=5, batch_size=128)
    let cfg = FitConfig {
        epochs,
        batch_size: 128,
        ..FitConfig::default()
    };
    model.fit(
        &train,
        None,
        &cfg,
        Optimizer::rmsprop(),
        |_| true,
        |_, log| {
            println!(
                "epoch: loss {:.4} - accuracy {:.4} - {:.1}s",
                log.loss, log.accuracy, log.seconds
            )
        },
    )?;

    // test_digits = test_images[0:10]; predictions = model.predict(test_digits)
    let test_digits = test_images.slice(&s![0..10])?;
    let predictions = model.predict_tensor(&test_digits)?;
    println!("predictions[0] = {:.4}", predictions.slice(&s![0])?);
    let argmax = predictions.argmax(1)?;
    println!(
        "predictions[0].argmax() = {}, probability {:.4}; test_labels[0] = {}",
        argmax[0],
        predictions.get(&[0, argmax[0]])?,
        test_labels[0]
    );

    // test_loss, test_acc = model.evaluate(test_images, test_labels)
    let test = Dataset::from_tensor(&test_images, &test_labels, 10)?;
    let (test_loss, test_acc) = model.evaluate(&test);
    println!("test_loss {test_loss:.4} - test_acc {test_acc:.4}");
    if epochs >= 5 && test_acc < 0.97 {
        return Err(format!("test accuracy {test_acc} is below the seed's ~0.98").into());
    }
    Ok(())
}
