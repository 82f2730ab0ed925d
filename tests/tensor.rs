//! Tensor: broadcasting against hand-worked cases, slicing and reshape round trips, tensordot
//! against matmul, reductions, conversions.

use mathblocks::data::Dataset;
use mathblocks::rng::Rng;
use mathblocks::s;
use mathblocks::tensor::{Tensor, broadcast_shape};

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::new(shape, v.to_vec()).unwrap()
}

#[test]
fn broadcasting_matches_hand_worked_cases() {
    // The seed's NumPy block: (3, 2) with (2,).
    let x = t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let y = t(&[2], &[10., 20.]);
    assert_eq!(
        x.add(&y).unwrap(),
        t(&[3, 2], &[11., 22., 13., 24., 15., 26.])
    );
    assert_eq!(
        x.mul(&y).unwrap(),
        t(&[3, 2], &[10., 40., 30., 80., 50., 120.])
    );
    assert_eq!(
        x.sub(&y).unwrap(),
        t(&[3, 2], &[-9., -18., -7., -16., -5., -14.])
    );
    assert_eq!(y.div(&x).unwrap().data()[..2], [10., 10.]);
    let half = Tensor::full(&[2], 0.5);
    assert_eq!(
        t(&[3, 2], &[0.1, 0.9, 0.5, 0.2, 0.7, 0.6])
            .maximum(&half)
            .unwrap(),
        t(&[3, 2], &[0.5, 0.9, 0.5, 0.5, 0.7, 0.6])
    );
    // Column (3, 1) against row (1, 2): both sides expand.
    let col = t(&[3, 1], &[1., 2., 3.]);
    let row = t(&[1, 2], &[10., 20.]);
    assert_eq!(
        col.add(&row).unwrap(),
        t(&[3, 2], &[11., 21., 12., 22., 13., 23.])
    );
    // A scalar against anything, and a 3-d case with a middle axis of 1.
    assert_eq!(x.mul(&Tensor::scalar(2.0)).unwrap(), x.mul_scalar(2.0));
    let a = Tensor::arange(6).into_shape(&[2, 1, 3]).unwrap();
    let b = t(&[2, 1], &[0., 100.]);
    assert_eq!(
        a.add(&b).unwrap(),
        t(
            &[2, 2, 3],
            &[0., 1., 2., 100., 101., 102., 3., 4., 5., 103., 104., 105.]
        )
    );
    assert_eq!(
        broadcast_shape(&[8, 1, 6, 1], &[7, 1, 5]).unwrap(),
        vec![8, 7, 6, 5]
    );
}

#[test]
fn incompatible_shapes_are_errors_naming_both() {
    let x = Tensor::zeros(&[3, 2]);
    let e = x.add(&Tensor::zeros(&[3])).unwrap_err().to_string();
    assert!(e.contains("[3, 2]") && e.contains("[3]"), "{e}");
    let e = x.matmul(&Tensor::zeros(&[3, 2])).unwrap_err().to_string();
    assert!(e.contains("[3, 2]"), "{e}");
    assert!(Tensor::new(&[2, 2], vec![1.0; 3]).is_err());
    assert!(
        x.reshape(&[4, 2])
            .unwrap_err()
            .to_string()
            .contains("[4, 2]")
    );
    assert!(x.transpose(0, 2).is_err());
    assert!(x.permute(&[0, 0]).is_err());
    assert!(x.sum(2).is_err());
    assert!(x.slice(&s![.., 1..3]).is_err());
    assert!(x.slice(&s![.., .., ..]).is_err());
    assert!(x.slice(&s![3]).is_err());
    assert!(x.get(&[3, 0]).is_err());
    assert!(x.item().is_err());
    assert!(x.tensordot(&x, &[1], &[1]).is_ok());
    assert!(x.tensordot(&x, &[0], &[1]).is_err());
    assert!(x.tensordot(&x, &[0, 0], &[0, 0]).is_err());
}

#[test]
fn shape_queries_and_reshape_round_trips() {
    let x = Tensor::arange(24);
    let y = x.reshape(&[2, 3, 4]).unwrap();
    assert_eq!((y.ndim(), y.shape(), y.len()), (3, &[2usize, 3, 4][..], 24));
    assert_eq!(y.get(&[1, 2, 3]).unwrap(), 23.0);
    assert_eq!(y.reshape(&[24]).unwrap(), x);
    assert_eq!(y.reshape(&[usize::MAX, 4]).unwrap().shape(), &[6, 4]);
    assert_eq!(Tensor::scalar(3.0).ndim(), 0);
    assert_eq!(Tensor::scalar(3.0).item().unwrap(), 3.0);
    // transpose twice is the identity; a matrix transpose moves (i, j) to (j, i).
    let m = y.reshape(&[4, 6]).unwrap();
    let mt = m.transpose(0, 1).unwrap();
    assert_eq!(mt.shape(), &[6, 4]);
    assert_eq!(mt.get(&[5, 1]).unwrap(), m.get(&[1, 5]).unwrap());
    assert_eq!(mt.transpose(1, 0).unwrap(), m);
    let p = y.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.shape(), &[4, 2, 3]);
    assert_eq!(p.get(&[3, 1, 2]).unwrap(), y.get(&[1, 2, 3]).unwrap());
}

#[test]
fn slicing_like_numpy_and_batches() {
    // 5 "images" of 28 x 28 whose pixel value encodes (image, row, col).
    let v: Vec<f32> = (0..5 * 28 * 28).map(|i| i as f32).collect();
    let images = Tensor::new(&[5, 28, 28], v).unwrap();
    let corner = images.slice(&s![.., 14.., 14..]).unwrap();
    assert_eq!(corner.shape(), &[5, 14, 14]);
    assert_eq!(
        corner.get(&[2, 0, 0]).unwrap(),
        images.get(&[2, 14, 14]).unwrap()
    );
    assert_eq!(
        corner.get(&[4, 13, 13]).unwrap(),
        images.get(&[4, 27, 27]).unwrap()
    );
    let centre = images.slice(&s![.., 7..21, 7..21]).unwrap();
    assert_eq!(centre.shape(), &[5, 14, 14]);
    let batch = images.slice(&s![1..3]).unwrap();
    assert_eq!(batch.shape(), &[2, 28, 28]);
    assert_eq!(batch.data(), &images.data()[784..3 * 784]);
    let one = images.slice(&s![4]).unwrap();
    assert_eq!(one.shape(), &[28, 28]);
    assert_eq!(one.get(&[0, 0]).unwrap(), 4.0 * 784.0);
    let row = images.slice(&s![0, 3, ..]).unwrap();
    assert_eq!(row, Tensor::arange(28).add_scalar(84.0));
    let incl = images.slice(&s![..=1, ..=0, ..]).unwrap();
    assert_eq!(incl.shape(), &[2, 1, 28]);
    // Batches of 2 along axis 0: 2, 2, 1, and they concatenate back to the whole.
    let bs: Vec<Tensor> = images.batches(2).collect();
    assert_eq!(
        bs.iter().map(|b| b.shape()[0]).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    let joined: Vec<f32> = bs.iter().flat_map(|b| b.data().to_vec()).collect();
    assert_eq!(joined, images.data());
    // An empty range is an empty tensor, not an error.
    assert!(images.slice(&s![3..3]).unwrap().is_empty());
}

#[test]
fn tensordot_agrees_with_matmul_and_by_hand() {
    let mut rng = Rng::new(7);
    let a = Tensor::random(&[5, 7], &mut rng);
    let b = Tensor::random(&[7, 3], &mut rng);
    let mm = a.matmul(&b).unwrap();
    let td = a.tensordot(&b, &[1], &[0]).unwrap();
    assert_eq!(mm.shape(), &[5, 3]);
    for (x, y) in mm.data().iter().zip(td.data()) {
        assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
    }
    // matmul against a plain triple loop.
    for i in 0..5 {
        for j in 0..3 {
            let r: f32 = (0..7)
                .map(|p| a.get(&[i, p]).unwrap() * b.get(&[p, j]).unwrap())
                .sum();
            assert!((mm.get(&[i, j]).unwrap() - r).abs() <= 1e-5);
        }
    }
    // A 3-d contraction over two axes, against the definition.
    let x = Tensor::random(&[2, 3, 4], &mut rng);
    let y = Tensor::random(&[4, 3, 5], &mut rng);
    let z = x.tensordot(&y, &[1, 2], &[1, 0]).unwrap();
    assert_eq!(z.shape(), &[2, 5]);
    for i in 0..2 {
        for l in 0..5 {
            let mut r = 0.0;
            for j in 0..3 {
                for k in 0..4 {
                    r += x.get(&[i, j, k]).unwrap() * y.get(&[k, j, l]).unwrap();
                }
            }
            assert!((z.get(&[i, l]).unwrap() - r).abs() <= 1e-5);
        }
    }
    // No shared axes: the outer product.
    let o = Tensor::arange(2)
        .tensordot(&Tensor::arange(3), &[], &[])
        .unwrap();
    assert_eq!(o, t(&[2, 3], &[0., 0., 0., 0., 1., 2.]));
}

#[test]
fn reductions_along_axes() {
    let x = t(&[2, 3], &[1., 5., 3., 4., 2., 6.]);
    assert_eq!(x.sum(0).unwrap(), t(&[3], &[5., 7., 9.]));
    assert_eq!(x.sum(1).unwrap(), t(&[2], &[9., 12.]));
    assert_eq!(x.mean(1).unwrap(), t(&[2], &[3., 4.]));
    assert_eq!(x.max(0).unwrap(), t(&[3], &[4., 5., 6.]));
    assert_eq!(x.argmax(1).unwrap(), vec![1, 2]);
    assert_eq!(x.argmax(0).unwrap(), vec![1, 0, 1]);
    assert_eq!(x.sum_all(), 21.0);
    assert_eq!(x.mean_all(), 3.5);
    let e = Tensor::zeros(&[2, 0]);
    assert!(e.max(1).is_err() && e.argmax(1).is_err());
    assert_eq!(e.sum(1).unwrap(), Tensor::zeros(&[2]));
    assert_eq!(x.relu(), x);
    assert!((x.exp().log().sub(&x).unwrap().sum_all()).abs() < 1e-5);
}

#[test]
fn dataset_round_trip_through_tensors() {
    let images = Tensor::arange(4 * 6).into_shape(&[4, 2, 3]).unwrap();
    let d = Dataset::from_tensor(&images, &[0, 1, 2, 1], 3).unwrap();
    assert_eq!((d.n, d.features, d.classes), (4, 6, 3));
    let back = Tensor::from(d.clone());
    assert_eq!(back.shape(), &[4, 6]);
    assert_eq!(back.reshape(&[4, 2, 3]).unwrap(), images);
    assert!(Dataset::from_tensor(&images, &[0, 1, 2], 3).is_err());
    assert!(Dataset::from_tensor(&images, &[0, 1, 2, 3], 3).is_err());
    assert!(Dataset::from_tensor(&Tensor::scalar(1.0), &[], 3).is_err());
}

#[test]
fn display_is_numpy_like() {
    let x = t(&[2, 2], &[1., 2.5, -3., 4.]);
    assert_eq!(format!("{x}"), "[[1, 2.5],\n [-3, 4]]");
    assert_eq!(format!("{:.1}", Tensor::arange(3)), "[0.0, 1.0, 2.0]");
    assert_eq!(
        format!("{}", Tensor::arange(2000)),
        "[0, 1, 2, ..., 1997, 1998, 1999]"
    );
    assert_eq!(Tensor::arange(1000).to_string().matches(", ").count(), 999);
}
