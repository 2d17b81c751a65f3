//! Parameters by module path, to and from safetensors bytes, and parameter ids that do not
//! change between processes: a checkpoint written by one run and read by a fresh process must
//! land on the same parameters, and burn's optimiser keys its state by parameter id.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use crate::{Error, Result};

/// Paths as `bert.layers.0.attention.query.linear.weight`.
#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn get(&self) -> String {
        self.0.join(".")
    }
}

/// FNV-1a of the path: the same module tree gets the same ids in every process.
fn path_id(path: &str) -> ParamId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ParamId::from(h)
}

/// Gives every float parameter an id derived from its module path (values, gradient settings
/// untouched).
pub fn stable_param_ids<M: Module>(model: M) -> M {
    struct Ids(Path);
    impl ModuleMapper for Ids {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(path_id(&self.0.get()), value, mapper)
        }
    }
    model.map(&mut Ids(Path::default()))
}

/// Every float parameter of `model` as f32 safetensors keyed by module path. Values are read
/// back asynchronously (the browser cannot block on the GPU).
pub async fn params_to_safetensors<M: Module>(model: &M) -> Result<Vec<u8>> {
    struct Collect(Path, Vec<(String, Vec<usize>, Tensor<1>)>);
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let shape = value.dims().to_vec();
            let n: usize = shape.iter().product();
            self.1.push((self.0.get(), shape, value.detach().reshape([n])));
        }
    }
    let mut c = Collect(Path::default(), Vec::new());
    model.visit(&mut c);
    let mut tensors = Vec::with_capacity(c.1.len());
    for (name, shape, t) in c.1 {
        let data =
            t.into_data_async().await.map_err(|e| Error::invalid("model", None, format!("reading {name}: {e:?}")))?;
        let data = if data.dtype() == DType::F32 { data } else { data.convert::<f32>() };
        let values =
            data.try_into_vec::<f32>().map_err(|e| Error::invalid("model", None, format!("reading {name}: {e:?}")))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    }
    let views = tensors
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("checkpoint", None, e.to_string()))?;
    safetensors::tensor::serialize(views, None).map_err(|e| Error::invalid("checkpoint", None, e.to_string()))
}

/// Replaces the values of `model`'s parameters with those saved by [`params_to_safetensors`]
/// (ids and gradient settings kept). Every missing, extra or mis-shaped tensor is reported in one
/// error naming `source`.
pub fn params_from_safetensors<M: Module>(model: M, bytes: &[u8], source: &str) -> Result<M> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::invalid(source, None, format!("not a readable checkpoint: {e}")))?;
    let mut saved: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::invalid(source, None, format!("{name}: {:?}, expected F32", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        saved.insert(name, (view.shape().to_vec(), values));
    }
    struct Apply {
        path: Path,
        saved: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
        problems: Vec<String>,
    }
    impl ModuleMapper for Apply {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.get();
            let (id, old, mapper) = param.consume();
            let shape = old.dims().to_vec();
            let value = match self.saved.remove(&name) {
                None => {
                    self.problems.push(format!("missing: {name} {shape:?}"));
                    old
                }
                Some((s, _)) if s != shape => {
                    self.problems
                        .push(format!("wrong shape: {name} is {s:?} in the checkpoint, the model has {shape:?}"));
                    old
                }
                Some((_, values)) => {
                    let grad = old.is_require_grad();
                    let t = Tensor::<D>::from_data(TensorData::new(values, shape), &old.device());
                    if grad {
                        t.require_grad()
                    } else {
                        t
                    }
                }
            };
            Param::from_mapped_value(id, value, mapper)
        }
    }
    let mut apply = Apply { path: Path::default(), saved, problems: Vec::new() };
    let model = model.map(&mut apply);
    apply.problems.extend(apply.saved.keys().map(|k| format!("unexpected: {k}")));
    if apply.problems.is_empty() {
        Ok(model)
    } else {
        Err(Error::invalid(
            source,
            None,
            format!(
                "the checkpoint does not fit this model (another mode or base model?):\n  {}",
                apply.problems.join("\n  ")
            ),
        ))
    }
}

/// Refuses a checkpoint of another run: `saved` is its identity, `ours` this run's (what must
/// not change between a run and its resumption); `source` names the checkpoint.
pub fn check_identity(saved: &serde_json::Value, ours: &serde_json::Value, source: &str) -> crate::Result<()> {
    if saved == ours {
        return Ok(());
    }
    let differs = identity_differences(saved, ours);
    Err(crate::Error::invalid(
        source,
        None,
        format!("the checkpoint belongs to another run (different data or settings): {differs}"),
    ))
}

/// "key: checkpoint A vs now B" for every key of `now` whose value `saved` does not share.
pub fn identity_differences(saved: &serde_json::Value, now: &serde_json::Value) -> String {
    now.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| saved.get(k.as_str()) != Some(v))
        .map(|(k, v)| {
            format!("{k}: checkpoint {} vs now {v}", saved.get(k.as_str()).unwrap_or(&serde_json::Value::Null))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
