//! The seed's NumPy block on element-wise operations and broadcasting:
//! `x = np.random.random((3, 2)); y = np.ones(2) / 2`, then `np.maximum(x, y)`, `x + y`,
//! `x * y`, plus a tensor dot and a reshape. `cargo run --release --example tensor_ops`.

use mathblocks::rng::Rng;
use mathblocks::tensor::{ShapeError, Tensor};

fn show(name: &str, t: &Tensor) {
    println!("{name} {:?}:\n{t:.3}\n", t.shape());
}

fn main() -> Result<(), ShapeError> {
    let mut rng = Rng::new(0);
    let x = Tensor::random(&[3, 2], &mut rng);
    let y = Tensor::ones(&[2]).div_scalar(2.0);
    show("x", &x);
    show("y", &y);
    show("np.maximum(x, y)", &x.maximum(&y)?);
    show("x + y", &x.add(&y)?);
    show("x * y", &x.mul(&y)?);
    show("relu(x - y)", &x.sub(&y)?.relu());
    // Tensor dot: (3, 2) . (2, 4) -> (3, 4).
    let w = Tensor::arange(8).into_shape(&[2, 4])?;
    show("x . w", &x.matmul(&w)?);
    show(
        "tensordot(x, w, axes=(1, 0))",
        &x.tensordot(&w, &[1], &[0])?,
    );
    // Reshape and transpose.
    show("x.reshape((2, 3))", &x.reshape(&[2, 3])?);
    show("x.T", &x.transpose(0, 1)?);
    // Broadcasting that does not work is an error naming the shapes.
    match x.add(&Tensor::ones(&[3])) {
        Err(e) => println!("x + ones(3): {e}"),
        Ok(_) => unreachable!("(3, 2) and (3,) do not broadcast"),
    }
    Ok(())
}
