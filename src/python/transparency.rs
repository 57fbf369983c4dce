//! `SigningKey`, `VerifyingKey`, `Checkpoint`, `InclusionProof`, `ConsistencyProof`,
//! `EvidenceResult` and `_verify_evidence`: conversions around `crate::transparency`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::convert::to_py;
use super::errors::invalid;
use super::pyrepr;
use crate::ledger::merkle::Hash;
use crate::transparency::{self as core, evidence};

/// An Ed25519 key that signs checkpoints, named (`SigningKey.generate(name)`). `str(key)` is
/// its secret encoding `PRIVATE+KEY+name+keyid+base64` (Go's note package format): keep it
/// secret.
#[pyclass(frozen, module = "statemeter")]
pub struct SigningKey {
    pub inner: core::SigningKey,
}

#[pymethods]
impl SigningKey {
    /// A new key from the operating system's randomness. `name` (no spaces or '+') names the
    /// signer in signature lines, e.g. `"example.com/statemeter"`.
    #[staticmethod]
    fn generate(name: &str) -> PyResult<Self> {
        Ok(SigningKey {
            inner: core::SigningKey::generate(name)?,
        })
    }

    /// Parses `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`.
    #[staticmethod]
    fn from_str(text: &str) -> PyResult<Self> {
        Ok(SigningKey {
            inner: core::SigningKey::parse(text)?,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The public key that checks this key's signatures.
    fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: self.inner.verifying_key(),
        }
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("SigningKey(name={})", pyrepr::text(py, self.inner.name()))
    }
}

/// The public half of a `SigningKey`: `name+keyid+base64(0x01 || key)`, as Go's note package
/// writes verifier keys. Give it to whoever checks your checkpoints and evidence.
#[pyclass(frozen, eq, module = "statemeter")]
#[derive(PartialEq)]
pub struct VerifyingKey {
    pub inner: core::VerifyingKey,
}

#[pymethods]
impl VerifyingKey {
    /// Parses `name+keyid+base64(0x01 || public key)`.
    #[staticmethod]
    fn from_str(text: &str) -> PyResult<Self> {
        Ok(VerifyingKey {
            inner: core::VerifyingKey::parse(text)?,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The key id, 8 hex digits.
    #[getter]
    fn key_id(&self) -> String {
        format!("{:08x}", self.inner.id())
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "VerifyingKey({})",
            pyrepr::text(py, &self.inner.to_string())
        )
    }
}

/// A verifying key given as a `VerifyingKey` or its text.
pub fn verifying_key(obj: &Bound<'_, PyAny>) -> PyResult<core::VerifyingKey> {
    if let Ok(k) = obj.downcast::<VerifyingKey>() {
        return Ok(k.get().inner.clone());
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(core::VerifyingKey::parse(s.to_str()?)?);
    }
    Err(invalid("key", "must be a VerifyingKey or its text"))
}

/// A signed checkpoint of a ledger's Merkle tree: a C2SP tlog-checkpoint (`origin`, `size`,
/// `root_hash`) in a C2SP signed note (`text`). Several signers may sign it (`cosign`).
#[pyclass(frozen, eq, module = "statemeter")]
#[derive(PartialEq)]
pub struct Checkpoint {
    pub inner: core::Checkpoint,
}

#[pymethods]
impl Checkpoint {
    /// Parses a signed checkpoint note (its signatures are checked by `verify`).
    #[staticmethod]
    fn parse(text: &str) -> PyResult<Self> {
        Ok(Checkpoint {
            inner: core::Checkpoint::parse(text)?,
        })
    }

    /// The origin line: `statemeter/<ledger_id>` for a ledger's checkpoints.
    #[getter]
    fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The number of records the tree covers.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }

    /// The tree's root hash, 64 hex digits.
    #[getter]
    fn root_hash(&self) -> String {
        hex::encode(self.inner.root)
    }

    /// The signed note.
    #[getter]
    fn text(&self) -> String {
        self.inner.text()
    }

    /// The names of the keys whose signature lines it carries (unchecked).
    #[getter]
    fn signers(&self) -> Vec<String> {
        self.inner
            .note
            .signatures
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether a signature of `key` (a `VerifyingKey` or its text) verifies over it.
    fn verify(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.verify(&verifying_key(key)?))
    }

    /// This checkpoint with `key`'s signature added (a witness co-signing it).
    fn cosign(&self, key: &SigningKey) -> Checkpoint {
        Checkpoint {
            inner: self.inner.cosign(&key.inner),
        }
    }

    fn __str__(&self) -> String {
        self.inner.text()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Checkpoint(origin={}, size={}, root_hash={})",
            pyrepr::text(py, &self.inner.origin),
            self.inner.size,
            pyrepr::text(py, &hex::encode(self.inner.root))
        )
    }
}

fn hashes_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Hash>> {
    let mut out = Vec::new();
    for h in obj.try_iter()? {
        let h = h?;
        let bytes = if let Ok(b) = h.downcast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if let Ok(s) = h.downcast::<PyString>() {
            hex::decode(s.to_str()?).map_err(|_| invalid("hashes", "a hash is not hex"))?
        } else {
            return Err(invalid(
                "hashes",
                "each hash must be 32 bytes or 64 hex digits",
            ));
        };
        out.push(
            bytes
                .try_into()
                .map_err(|_| invalid("hashes", "each hash must be 32 bytes or 64 hex digits"))?,
        );
    }
    Ok(out)
}

fn record_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    Err(invalid(
        "record",
        "must be the record text (str) or its bytes",
    ))
}

/// That a record is leaf `leaf_index` (its seq − 1) of the tree of `tree_size` records:
/// `hashes` is the audit path, bottom up (hex).
#[pyclass(frozen, eq, module = "statemeter")]
#[derive(PartialEq)]
pub struct InclusionProof {
    pub inner: core::InclusionProof,
}

#[pymethods]
impl InclusionProof {
    #[new]
    fn new(leaf_index: u64, tree_size: u64, hashes: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(InclusionProof {
            inner: core::InclusionProof {
                leaf_index,
                tree_size,
                hashes: hashes_arg(hashes)?,
            },
        })
    }

    #[getter]
    fn leaf_index(&self) -> u64 {
        self.inner.leaf_index
    }

    #[getter]
    fn tree_size(&self) -> u64 {
        self.inner.tree_size
    }

    #[getter]
    fn hashes(&self) -> Vec<String> {
        self.inner.hashes.iter().map(hex::encode).collect()
    }

    /// Whether `record` (the record text as stored, `ledger.record(id)`) is at `leaf_index`
    /// in the tree `checkpoint` signs. Check the checkpoint's signature with
    /// `checkpoint.verify(key)`.
    fn verify(&self, record: &Bound<'_, PyAny>, checkpoint: &Checkpoint) -> PyResult<bool> {
        Ok(self.inner.verify(&record_arg(record)?, &checkpoint.inner))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "InclusionProof(leaf_index={}, tree_size={}, hashes={})",
            self.inner.leaf_index,
            self.inner.tree_size,
            pyrepr::texts(py, self.hashes().iter().map(String::as_str))
        )
    }
}

/// That the tree of `old_size` records is a prefix of the tree of `new_size` (RFC 9162).
#[pyclass(frozen, eq, module = "statemeter")]
#[derive(PartialEq)]
pub struct ConsistencyProof {
    pub inner: core::ConsistencyProof,
}

#[pymethods]
impl ConsistencyProof {
    #[new]
    fn new(old_size: u64, new_size: u64, hashes: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(ConsistencyProof {
            inner: core::ConsistencyProof {
                old_size,
                new_size,
                hashes: hashes_arg(hashes)?,
            },
        })
    }

    #[getter]
    fn old_size(&self) -> u64 {
        self.inner.old_size
    }

    #[getter]
    fn new_size(&self) -> u64 {
        self.inner.new_size
    }

    #[getter]
    fn hashes(&self) -> Vec<String> {
        self.inner.hashes.iter().map(hex::encode).collect()
    }

    /// Whether the tree `old` signs is a prefix of the tree `new` signs.
    fn verify(&self, old: &Checkpoint, new: &Checkpoint) -> bool {
        self.inner.verify(&old.inner, &new.inner)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "ConsistencyProof(old_size={}, new_size={}, hashes={})",
            self.inner.old_size,
            self.inner.new_size,
            pyrepr::texts(py, self.hashes().iter().map(String::as_str))
        )
    }
}

/// The check of an evidence bundle (`verify_evidence`): `ok`, `problem` (the bundle as a
/// whole: format, checkpoint, signature), `failed` (the event ids that do not check out),
/// `items` (one dict per event: `event_id`, `seq`, `ok`, `problem`, and the `event` and its
/// `classification` the signed records hold, `None` for an item that fails), the signed `checkpoint`,
/// and the bundle's `rows` and `context` as given (not covered by the signature).
#[pyclass(frozen, module = "statemeter")]
pub struct EvidenceResult {
    inner: evidence::EvidenceCheck,
}

#[pymethods]
impl EvidenceResult {
    #[getter]
    fn ok(&self) -> bool {
        self.inner.ok
    }

    #[getter]
    fn problem(&self) -> Option<&str> {
        self.inner.problem.as_deref()
    }

    #[getter]
    fn failed(&self) -> Vec<&str> {
        self.inner.failed()
    }

    #[getter]
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for i in &self.inner.items {
            let d = PyDict::new(py);
            d.set_item("event_id", &i.event_id)?;
            d.set_item("seq", i.seq)?;
            d.set_item("ok", i.problem.is_none())?;
            d.set_item("problem", i.problem.as_deref())?;
            let value =
                |v: &Option<serde_json::Value>| v.as_ref().map(|v| to_py(py, v)).transpose();
            d.set_item("event", value(&i.event)?)?;
            d.set_item("classification", value(&i.classification)?)?;
            list.append(d)?;
        }
        Ok(list)
    }

    #[getter]
    fn checkpoint(&self) -> Option<Checkpoint> {
        self.inner
            .checkpoint
            .clone()
            .map(|inner| Checkpoint { inner })
    }

    #[getter]
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.rows.as_ref().map(|v| to_py(py, v)).transpose()
    }

    #[getter]
    fn context<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .context
            .as_ref()
            .map(|v| to_py(py, v))
            .transpose()
    }

    fn __bool__(&self) -> bool {
        self.inner.ok
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "EvidenceResult(ok={}, items={}, failed={}, problem={})",
            pyrepr::boolean(self.inner.ok),
            self.inner.items.len(),
            pyrepr::texts(py, self.inner.failed()),
            pyrepr::opt_text(py, self.inner.problem.as_deref())
        )
    }
}

/// Checks an evidence bundle's JSON text with the ledger owner's verifying key.
#[pyfunction]
pub fn _verify_evidence(
    py: Python<'_>,
    bundle: &str,
    key: &Bound<'_, PyAny>,
) -> PyResult<EvidenceResult> {
    let key = verifying_key(key)?;
    let bundle = bundle.to_owned();
    let inner = py.detach(move || evidence::verify(&bundle, &key));
    Ok(EvidenceResult { inner })
}
