//! Small models written as ONNX protobuf from Rust, for tests and benchmarks while (and
//! wherever) the trained models are absent. The forest is a real, if crude, classifier:
//! extremely randomised trees grown on the rows given (random feature, threshold taken from
//! a row reaching the node, leaves holding the class frequencies), so its decision paths and
//! probabilities behave like a trained forest's. The autoencoder is a random two-layer MLP
//! that outputs its reconstruction of the input.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// A deterministic splitmix64 generator, so fixtures are the same on every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Shape of the forest to grow.
#[derive(Debug, Clone, Copy)]
pub struct ForestShape {
    pub trees: usize,
    pub max_depth: usize,
    /// Nodes with fewer rows become leaves.
    pub min_rows: usize,
    pub seed: u64,
}

#[derive(Default)]
struct Arrays {
    tree: Vec<i64>,
    node: Vec<i64>,
    feature: Vec<i64>,
    value: Vec<f32>,
    mode: Vec<Vec<u8>>,
    on_true: Vec<i64>,
    on_false: Vec<i64>,
    c_tree: Vec<i64>,
    c_node: Vec<i64>,
    c_id: Vec<i64>,
    c_w: Vec<f32>,
}

/// Grows a forest on `rows` (row-major, `width` values each) labelled `labels` (class
/// indices below `n_classes`) and returns the ONNX model: input `features` float [N, width],
/// outputs `label` int64 [N] and `probabilities` float [N, n_classes].
pub fn forest(rows: &[f32], width: usize, labels: &[u32], n_classes: usize, shape: ForestShape) -> ModelProto {
    let n = labels.len();
    assert_eq!(rows.len(), n * width);
    let mut rng = Rng::new(shape.seed);
    let mut a = Arrays::default();
    for t in 0..shape.trees {
        // Bootstrap-free: every tree sees every row, the randomness is in the splits.
        let mut idx: Vec<usize> = (0..n).collect();
        let mut next_id = 0i64;
        grow(&mut a, t as i64, &mut next_id, &mut idx, 0, rows, width, labels, n_classes, shape, &mut rng);
    }
    let node = NodeProto {
        input: vec!["features".into()],
        output: vec!["label".into(), "probabilities".into()],
        name: "forest".into(),
        op_type: "TreeEnsembleClassifier".into(),
        domain: "ai.onnx.ml".into(),
        attribute: vec![
            ints("classlabels_int64s", (0..n_classes as i64).collect()),
            ints("nodes_treeids", a.tree),
            ints("nodes_nodeids", a.node),
            ints("nodes_featureids", a.feature),
            floats("nodes_values", a.value),
            strings("nodes_modes", a.mode),
            ints("nodes_truenodeids", a.on_true),
            ints("nodes_falsenodeids", a.on_false),
            ints("class_treeids", a.c_tree),
            ints("class_nodeids", a.c_node),
            ints("class_ids", a.c_id),
            floats("class_weights", a.c_w),
            string("post_transform", "NONE"),
        ],
        ..Default::default()
    };
    model(
        vec![node],
        vec![],
        vec![value_info("features", DataType::Float, &[None, Some(width)])],
        vec![
            value_info("label", DataType::Int64, &[None]),
            value_info("probabilities", DataType::Float, &[None, Some(n_classes)]),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn grow(
    a: &mut Arrays,
    tree: i64,
    next_id: &mut i64,
    idx: &mut [usize],
    depth: usize,
    rows: &[f32],
    width: usize,
    labels: &[u32],
    n_classes: usize,
    shape: ForestShape,
    rng: &mut Rng,
) -> i64 {
    let id = *next_id;
    *next_id += 1;
    let pure = idx.iter().all(|&i| labels[i] == labels[idx[0]]);
    if depth < shape.max_depth && idx.len() >= shape.min_rows && !pure {
        // A few tries at a split that separates something.
        for _ in 0..8 {
            let f = rng.below(width);
            let thr = rows[idx[rng.below(idx.len())] * width + f];
            let mut lo = 0;
            for k in 0..idx.len() {
                if rows[idx[k] * width + f] <= thr {
                    idx.swap(lo, k);
                    lo += 1;
                }
            }
            if lo == 0 || lo == idx.len() {
                continue;
            }
            let slot = a.tree.len();
            a.tree.push(tree);
            a.node.push(id);
            a.feature.push(f as i64);
            a.value.push(thr);
            a.mode.push(b"BRANCH_LEQ".to_vec());
            a.on_true.push(0);
            a.on_false.push(0);
            let (left, right) = idx.split_at_mut(lo);
            let t = grow(a, tree, next_id, left, depth + 1, rows, width, labels, n_classes, shape, rng);
            let f = grow(a, tree, next_id, right, depth + 1, rows, width, labels, n_classes, shape, rng);
            a.on_true[slot] = t;
            a.on_false[slot] = f;
            return id;
        }
    }
    a.tree.push(tree);
    a.node.push(id);
    a.feature.push(0);
    a.value.push(0.0);
    a.mode.push(b"LEAF".to_vec());
    a.on_true.push(0);
    a.on_false.push(0);
    let mut counts = vec![0u32; n_classes];
    for &i in idx.iter() {
        counts[labels[i] as usize] += 1;
    }
    for (c, &k) in counts.iter().enumerate() {
        a.c_tree.push(tree);
        a.c_node.push(id);
        a.c_id.push(c as i64);
        a.c_w.push(k as f32 / idx.len().max(1) as f32 / shape.trees as f32);
    }
    id
}

/// A random autoencoder `width → hidden → width` (ReLU between) that outputs `score` [N, 1],
/// the mean squared error between its reconstruction and its (scaled) input, in the layout
/// the trainer writes (`Sub`, `Mul`, `MatMul` with a column of 1/F). `scale` divides the
/// input first, so raw flow features of very different magnitudes stay finite.
pub fn autoencoder(width: usize, hidden: usize, scale: &[f32], seed: u64) -> ModelProto {
    assert_eq!(scale.len(), width);
    let mut rng = Rng::new(seed);
    let mut mat = |r: usize, c: usize| -> Vec<f32> { (0..r * c).map(|_| rng.unit() / (r as f32).sqrt()).collect() };
    let w1 = mat(width, hidden);
    let w2 = mat(hidden, width);
    let inits = vec![
        tensor("inv_scale", &[width], scale.iter().map(|s| 1.0 / s.max(1e-6)).collect()),
        tensor("w1", &[width, hidden], w1),
        tensor("b1", &[hidden], vec![0.01; hidden]),
        tensor("w2", &[hidden, width], w2),
        tensor("b2", &[width], vec![0.0; width]),
        tensor("mean_col", &[width, 1], vec![1.0 / width as f32; width]),
    ];
    let op = |name: &str, op: &str, inputs: &[&str], output: &str| NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    };
    let nodes = vec![
        op("norm", "Mul", &["features", "inv_scale"], "x"),
        op("mm1", "MatMul", &["x", "w1"], "h0"),
        op("add1", "Add", &["h0", "b1"], "h1"),
        op("relu", "Relu", &["h1"], "h"),
        op("mm2", "MatMul", &["h", "w2"], "y0"),
        op("add2", "Add", &["y0", "b2"], "y1"),
        op("diff", "Sub", &["y1", "x"], "diff"),
        op("sq", "Mul", &["diff", "diff"], "sq"),
        op("mean", "MatMul", &["sq", "mean_col"], "score"),
    ];
    model(
        nodes,
        inits,
        vec![value_info("features", DataType::Float, &[None, Some(width)])],
        vec![value_info("score", DataType::Float, &[None, Some(1)])],
    )
}

/// The protobuf bytes of a model.
pub fn encode(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

fn model(node: Vec<NodeProto>, initializer: Vec<TensorProto>, input: Vec<ValueInfoProto>, output: Vec<ValueInfoProto>) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 17 },
            OperatorSetIdProto { domain: "ai.onnx.ml".into(), version: 3 },
        ],
        producer_name: "portcullis-inference synthetic".into(),
        graph: Some(GraphProto { node, name: "g".into(), initializer, input, output, ..Default::default() }),
        ..Default::default()
    }
}

fn value_info(name: &str, dt: DataType, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dt as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v, ..Default::default() }
}

fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Floats as i32, floats: v, ..Default::default() }
}

fn strings(name: &str, v: Vec<Vec<u8>>) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Strings as i32, strings: v, ..Default::default() }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: v.as_bytes().to_vec(), ..Default::default() }
}

/// Writes a complete model directory (`model.yaml`, `classifier.onnx`, `anomaly.onnx`) for
/// a forest grown on `rows` and returns the `model.yaml` path. Without `anomaly_threshold`
/// only the classifier alerts.
#[allow(clippy::too_many_arguments)]
pub fn write_model_dir(
    dir: &std::path::Path,
    names: &[&str],
    rows: &[f32],
    labels: &[u32],
    classes: &[&str],
    shape: ForestShape,
    anomaly_threshold: Option<f32>,
) -> std::io::Result<std::path::PathBuf> {
    let width = names.len();
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("classifier.onnx"), encode(&forest(rows, width, labels, classes.len(), shape)))?;
    // Scale each feature by its largest magnitude so the autoencoder sees values in [-1, 1].
    let mut scale = vec![1.0f32; width];
    for r in rows.chunks(width) {
        for (s, v) in scale.iter_mut().zip(r) {
            if v.is_finite() {
                *s = s.max(v.abs());
            }
        }
    }
    std::fs::write(dir.join("anomaly.onnx"), encode(&autoencoder(width, 16, &scale, shape.seed ^ 0xAE)))?;
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let list = |v: &[&str]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
    // The trainer's layout (training/train.py), reduced to what the scorer reads.
    let mut yaml = format!(
        "name: synthetic-forest\nversion: \"0\"\nfeatures:\n  names: [{}]\n  sha256: {}\n\
         classifier:\n  file: classifier.onnx\n  classes: [{}]\n  min_probability: 0.5\n\
         anomaly:\n  file: anomaly.onnx\n",
        list(names),
        crate::features_sha256(names),
        list(classes)
    );
    if let Some(t) = anomaly_threshold {
        yaml.push_str(&format!("  threshold: {t}\n"));
    }
    let p = dir.join("model.yaml");
    std::fs::write(&p, yaml)?;
    Ok(p)
}

/// The stand-in for the shipped model where there is none (a checkout without
/// `configs/models`): 100 trees of depth ≤ 16 grown on `data` with its labels as classes
/// ("Attempted" flows counted as BENIGN, as the trainer does), written to `dir`. Returns the
/// `model.yaml` path.
pub fn stand_in_model(dir: &std::path::Path, names: &[&str], data: &crate::dataset::Dataset) -> std::io::Result<std::path::PathBuf> {
    let mut classes: Vec<&str> = vec!["BENIGN"];
    let labels: Vec<u32> = data
        .labels
        .iter()
        .map(|l| {
            let l = if l.contains("Attempted") { "BENIGN" } else { l.as_str() };
            classes.iter().position(|c| *c == l).unwrap_or_else(|| {
                classes.push(l);
                classes.len() - 1
            }) as u32
        })
        .collect();
    let shape = ForestShape { trees: 100, max_depth: 16, min_rows: 2, seed: 1 };
    write_model_dir(dir, names, &data.values, &labels, &classes, shape, None)
}
