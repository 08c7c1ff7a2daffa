//! Compiles `kernels/*.cu` to PTX for a virtual architecture (compute_75, so the driver JITs it on
//! any newer GPU; a file whose first lines say `// scoop-arch: compute_NN` gets that one, and
//! loads only on such GPUs): with `nvcc` when present, else with NVRTC (loaded dynamically through
//! cudarc).
//! With neither, the build still succeeds quietly (a machine without a GPU needs no kernels) and
//! embeds no PTX; `scoop devices` says why. With `SCOOP_REQUIRE_PTX` set (CI, `gpu-bundle.sh`) the
//! build fails instead, naming the reason.
//!
//! NVRTC is looked for in `SCOOP_NVRTC_LIB` (path of libnvrtc.so.12), `$CUDA_HOME/lib64`,
//! `/usr/local/cuda/lib64`, and the `nvidia-cuda-nvrtc-cu12` pip package of `python3`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ARCH: &str = "compute_75";

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "SCOOP_NVRTC_LIB",
        "SCOOP_NO_NVCC",
        "SCOOP_REQUIRE_PTX",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let kdir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("kernels");
    let mut sources: Vec<PathBuf> = fs::read_dir(&kdir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    sources.retain(|p| p.extension().is_some_and(|e| e == "cu"));
    sources.sort();

    let result = match find_nvcc() {
        Some(nvcc) => compile_nvcc(&nvcc, &kdir, &sources, &out),
        None => compile_nvrtc(&kdir, &sources, &out),
    };
    let (modules, provenance) = match result {
        Ok((m, p)) => (m, p),
        Err(why) => {
            if env::var_os("SCOOP_REQUIRE_PTX").is_some() {
                panic!("scoop: CUDA kernels not compiled ({why}) and SCOOP_REQUIRE_PTX is set");
            }
            (Vec::new(), format!("no PTX in this build: {why}"))
        }
    };
    let mut rs = String::from("/// PTX modules compiled from kernels/*.cu: (family, PTX).\npub const PTX_MODULES: &[(&str, &str)] = &[\n");
    for (name, file) in &modules {
        writeln!(
            rs,
            "    ({name:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .unwrap();
    }
    rs.push_str("];\n");
    writeln!(
        rs,
        "/// How the PTX was produced.\npub const PTX_PROVENANCE: &str = {provenance:?};"
    )
    .unwrap();
    fs::write(out.join("kernels.rs"), rs).expect("write kernels.rs");
}

fn find_nvcc() -> Option<PathBuf> {
    if env::var_os("SCOOP_NO_NVCC").is_some() {
        return None;
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = env::var_os("NVCC") {
        candidates.push(p.into());
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(h) = env::var_os(var) {
            candidates.push(Path::new(&h).join("bin/nvcc"));
        }
    }
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|d| d.join("nvcc")));
    }
    candidates.push("/usr/local/cuda/bin/nvcc".into());
    candidates.into_iter().find(|p| p.is_file())
}

type Compiled = (Vec<(String, PathBuf)>, String);

/// The architectures of a build: [`ARCH`], and the files that say otherwise.
fn arches(sources: &[PathBuf]) -> String {
    let other: Vec<String> = sources
        .iter()
        .filter(|s| arch_of(s) != ARCH)
        .map(|s| format!("{}: {}", stem(s), arch_of(s)))
        .collect();
    if other.is_empty() {
        ARCH.to_string()
    } else {
        format!("{ARCH} ({})", other.join(", "))
    }
}

/// The virtual architecture of `src`: a `// scoop-arch: compute_NN` line among its first five,
/// else [`ARCH`].
/// Whether `src` asks (a `// scoop-no-fmad` line among its first ten) to be compiled without
/// fused multiply-adds: the kernels whose results must equal the CPU's bit for bit. Their
/// arithmetic is written as explicit `_rn` intrinsics already; this keeps a plain `a * b + c`
/// added later from being contracted.
fn no_fmad(src: &Path) -> bool {
    let text = fs::read_to_string(src).unwrap_or_default();
    text.lines()
        .take(10)
        .any(|l| l.trim() == "// scoop-no-fmad")
}

fn arch_of(src: &Path) -> &'static str {
    let text = fs::read_to_string(src).unwrap_or_default();
    for line in text.lines().take(5) {
        if let Some(a) = line.trim().strip_prefix("// scoop-arch:") {
            return match a.trim() {
                "compute_80" => "compute_80",
                "compute_90" => "compute_90",
                other => panic!("{}: unknown scoop-arch {other}", src.display()),
            };
        }
    }
    ARCH
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn compile_nvcc(
    nvcc: &Path,
    kdir: &Path,
    sources: &[PathBuf],
    out: &Path,
) -> Result<Compiled, String> {
    let version = Command::new(nvcc)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let mut modules = Vec::new();
    for src in sources {
        let ptx = out.join(format!("{}.ptx", stem(src)));
        let status = Command::new(nvcc)
            .args(["--ptx", &format!("-arch={}", arch_of(src)), "-O3"])
            .args(no_fmad(src).then_some("--fmad=false"))
            .arg("-I")
            .arg(kdir)
            .arg("-o")
            .arg(&ptx)
            .arg(src)
            .status()
            .map_err(|e| format!("running {}: {e}", nvcc.display()))?;
        if !status.success() {
            panic!("nvcc failed on {}", src.display());
        }
        modules.push((stem(src), ptx));
    }
    Ok((modules, format!("nvcc ({version}), {}", arches(sources))))
}

fn nvrtc_candidates() -> Vec<PathBuf> {
    let mut c: Vec<PathBuf> = Vec::new();
    if let Some(p) = env::var_os("SCOOP_NVRTC_LIB") {
        c.push(p.into());
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(h) = env::var_os(var) {
            c.push(Path::new(&h).join("lib64/libnvrtc.so.12"));
        }
    }
    c.push("/usr/local/cuda/lib64/libnvrtc.so.12".into());
    let py = "import importlib.util as u, os; s = u.find_spec('nvidia.cuda_nvrtc'); \
              print(os.path.join(list(s.submodule_search_locations)[0], 'lib') if s else '')";
    if let Ok(o) = Command::new("python3").args(["-c", py]).output() {
        let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !dir.is_empty() {
            c.push(Path::new(&dir).join("libnvrtc.so.12"));
        }
    }
    c
}

fn compile_nvrtc(kdir: &Path, sources: &[PathBuf], out: &Path) -> Result<Compiled, String> {
    // Load the library by full path with RTLD_GLOBAL: cudarc's later dlopen by soname then finds it.
    let lib = nvrtc_candidates()
        .into_iter()
        .filter(|p| p.is_file())
        .find_map(|p| {
            // SAFETY: loading NVRTC runs only its initializers.
            unsafe {
                libloading::os::unix::Library::open(
                    Some(&p),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            }
            .ok()
            .map(|l| (l, p))
        });
    let Some((_lib, path)) = lib else {
        return Err("neither nvcc nor libnvrtc.so.12 found (pip install nvidia-cuda-nvrtc-cu12, or set SCOOP_NVRTC_LIB)".into());
    };
    // SAFETY: dlopen probe only.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(format!(
            "{} loaded but cudarc cannot see it",
            path.display()
        ));
    }
    let mut modules = Vec::new();
    for src in sources {
        let text = fs::read_to_string(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let opts = cudarc::nvrtc::CompileOptions {
            arch: Some(arch_of(src)),
            include_paths: vec![kdir.display().to_string()],
            name: Some(src.file_name().unwrap().to_string_lossy().into_owned()),
            fmad: no_fmad(src).then_some(false),
            ..Default::default()
        };
        let ptx = match cudarc::nvrtc::compile_ptx_with_opts(text, opts) {
            Ok(p) => p,
            Err(e) => panic!("NVRTC failed on {}: {e:?}", src.display()),
        };
        let file = out.join(format!("{}.ptx", stem(src)));
        fs::write(&file, ptx.to_src()).map_err(|e| format!("{}: {e}", file.display()))?;
        modules.push((stem(src), file));
    }
    let mut major = 0;
    let mut minor = 0;
    // SAFETY: out-parameter query on a loaded NVRTC.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    Ok((
        modules,
        format!("NVRTC {major}.{minor}, {}", arches(sources)),
    ))
}
