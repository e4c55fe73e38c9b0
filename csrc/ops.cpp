// The fastmix operator library: schemas declared once here, implemented per dispatch key in
// cpu/ and cuda/, given fake (meta) implementations in fastmix/backends/extension.py.
#include <Python.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/order_statistics.h"

#ifndef FASTMIX_TORCH_VERSION
#define FASTMIX_TORCH_VERSION "unknown"
#endif

// How many threads at::parallel_for gives the CPU kernels of this build. It is inline, so this
// is what the library was compiled for, not what torch reports: a build without OpenMP runs every
// range on the calling thread whatever torch.set_num_threads says.
static PyObject* cpu_threads(PyObject*, PyObject*) {
  std::atomic<int64_t> threads{1};
  at::parallel_for(0, 4 * at::get_num_threads(), 1, [&](int64_t, int64_t) {
    const int64_t mine = at::get_thread_num() + 1;
    int64_t seen = threads.load();
    while (mine > seen && !threads.compare_exchange_weak(seen, mine)) {
    }
  });
  return PyLong_FromLongLong(threads.load());
}

// Which hand-written vector rows the CPU kernels take here (cpu/cpu_features.h): "avx512_vbmi",
// "avx512", "avx2" or "baseline", after FASTMIX_CPU_FEATURES.
static PyObject* cpu_vector_rows(PyObject*, PyObject*) {
  using namespace fastmix::cpu;
  return PyUnicode_FromString(cpu_has_avx512_vbmi() ? "avx512_vbmi"
                              : cpu_has_avx512()    ? "avx512"
                              : cpu_has_avx2()      ? "avx2"
                                                    : "baseline");
}

// A C-contiguous buffer of one dimension and the given struct format ("f" float32, "q"/"l" int64),
// or a TypeError naming the argument; the caller releases it.
static bool vector_buffer(PyObject* object, const char* name, char kind, Py_ssize_t itemsize, bool writable,
                          Py_buffer* view) {
  const int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(object, view, flags) != 0)
    return false;
  const char* format = view->format[0] == '<' || view->format[0] == '=' || view->format[0] == '@'
                           ? view->format + 1 : view->format;
  const bool of_kind = kind == 'f' ? format[0] == 'f' : (format[0] == 'q' || format[0] == 'l');
  if (view->ndim != 1 || !of_kind || format[1] != '\0' || view->itemsize != itemsize) {
    PyErr_Format(PyExc_TypeError, "order_statistics: %s must be a 1-D %s array, got format '%s' with %d dimensions",
                 name, kind == 'f' ? "float32" : "int64", view->format, view->ndim);
    PyBuffer_Release(view);
    return false;
  }
  return true;
}

// order_statistics(values, ranks, value, below): cpu/order_statistics.h on numpy arrays, writing
// value (float32, like ranks) and below (int64, like ranks).
static PyObject* order_statistics(PyObject*, PyObject* args) {
  PyObject *values_object, *ranks_object, *value_object, *below_object;
  if (!PyArg_ParseTuple(args, "OOOO", &values_object, &ranks_object, &value_object, &below_object))
    return nullptr;
  Py_buffer values, ranks, value, below;
  if (!vector_buffer(values_object, "values", 'f', 4, false, &values))
    return nullptr;
  if (!vector_buffer(ranks_object, "ranks", 'q', 8, false, &ranks)) {
    PyBuffer_Release(&values);
    return nullptr;
  }
  if (!vector_buffer(value_object, "value", 'f', 4, true, &value)) {
    PyBuffer_Release(&values), PyBuffer_Release(&ranks);
    return nullptr;
  }
  if (!vector_buffer(below_object, "below", 'q', 8, true, &below)) {
    PyBuffer_Release(&values), PyBuffer_Release(&ranks), PyBuffer_Release(&value);
    return nullptr;
  }
  const int64_t n = values.shape[0], k = ranks.shape[0];
  // The ranks are copied and checked with the GIL held: the caller's array could change while the
  // selection runs without it, and an unchecked rank would index out of bounds.
  const auto* caller_ranks = static_cast<const int64_t*>(ranks.buf);
  std::vector<int64_t> rank(caller_ranks, caller_ranks + k);
  const char* error = nullptr;
  if (value.shape[0] != k || below.shape[0] != k)
    error = "value and below must have as many elements as ranks";
  else if (n >= (int64_t{1} << 32) - 1)
    error = "values must have fewer than 2^32 - 1 elements";
  for (int64_t j = 0; error == nullptr && j < k; ++j)
    if (rank[j] < 0 || rank[j] >= n)
      error = "every rank must be in [0, len(values))";
  if (error == nullptr) {
    bool finite;
    Py_BEGIN_ALLOW_THREADS
    finite = fastmix::cpu::order_statistics(static_cast<const float*>(values.buf), n, rank.data(), k,
                                            static_cast<float*>(value.buf), static_cast<int64_t*>(below.buf));
    Py_END_ALLOW_THREADS
    if (!finite)
      error = "values must be finite";
  }
  if (error != nullptr)
    PyErr_Format(PyExc_ValueError, "order_statistics: %s (len(values) %lld, len(ranks) %lld)", error,
                 static_cast<long long>(n), static_cast<long long>(k));
  PyBuffer_Release(&values), PyBuffer_Release(&ranks), PyBuffer_Release(&value), PyBuffer_Release(&below);
  if (error != nullptr)
    return nullptr;
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"cpu_threads", cpu_threads, METH_NOARGS,
     "cpu_threads() -> int: the threads the CPU kernels run on now (torch.set_num_threads, if this build is parallel)"},
    {"cpu_vector_rows", cpu_vector_rows, METH_NOARGS,
     "cpu_vector_rows() -> str: the vector rows the CPU kernels take: avx512_vbmi, avx512, avx2 or baseline"},
    {"order_statistics", order_statistics, METH_VARARGS,
     "order_statistics(values, ranks, value, below): for float32 values (n,) and int64 ranks (k,) in [0, n), "
     "writes value (float32 (k,)), value[j] the ranks[j]-th smallest, and below (int64 (k,)), how many "
     "values are smaller than each; values must be finite"},
    {nullptr, nullptr, 0, nullptr}};

// `import fastmix._C` loads this library, which registers the ops below with the dispatcher.
extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                   "fastmix operators (registered as torch.ops.fastmix)", -1, module_methods};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr)
    PyModule_AddStringConstant(module, "torch_version", FASTMIX_TORCH_VERSION);
  return module;
}

TORCH_LIBRARY(fastmix, m) {
  // Mixes images in place: sample i becomes a blend of itself and images[partner[i]] (kind 1),
  // gets the box region of images[partner[i]] pasted in (kind 2), takes images[partner[i]]'s pixels
  // where its plane of pixel_mask (uint8 (B, H, W), each plane dense, any batch stride) is nonzero
  // (kind 3), or stays as it is (kind 0). With mask_field (float32 (H, W)) and field_threshold
  // (float32 (B,)) instead of pixel_mask, a kind 3 sample takes its partner's pixel (y, x) where
  // mask_field[(y + dy) % H, (x + dx) % W] < field_threshold[i], box[i] being (dy, dy + H, dx, dx + W).
  // plan: the CUDA kernels' plan of these params (fastmix::device_plan, on the images' device) and
  // plan_shape its header's fields, read on the host; without one the CUDA op builds it (syncing
  // on GPU params: csrc/cuda/mix_cuda.cu). The CPU kernels check it and build their own.
  m.def(
      "mix_(Tensor(a!) images, Tensor partner, Tensor lam, Tensor kind, Tensor box, Tensor? plan=None, "
      "int[] plan_shape=[], Tensor? pixel_mask=None, Tensor? mask_field=None, Tensor? field_threshold=None) -> ()");
  // The in-place plans of a MixParams on the CPU (csrc/mix_plan.h): the CUDA kernels' as a uint8
  // buffer (make_device_plan), and the CPU kernels' steps as (n, 3) int64 rows (op, a, b) for numba.
  m.def("device_plan(Tensor partner, Tensor lam, Tensor kind, Tensor box) -> Tensor");
  m.def("inplace_plan(Tensor partner, Tensor kind) -> Tensor");
  // (B, num_classes) float32 soft targets for class indices (B,) or dense targets (B, C).
  m.def(
      "mix_targets(Tensor labels, Tensor partner, Tensor lam, Tensor kind, int num_classes, "
      "float smoothing) -> Tensor");
  // Out of place: writes the mixed batch into out (B, C, H, W) (contiguous or channels_last;
  // uint8, float32, bfloat16 or float16), reading images (B, C, H, W), or (B, H, W, C) when hwc,
  // (uint8 or float32) once. Each element is cast(normalize(mixed)), normalize being
  // v * scale[c] + bias[c] when scale/bias (float32 (C,)) are not empty. One pass in, one out.
  // pixel_mask: as for mix_ (kind 3), (B, H, W) of out's H and W.
  m.def(
      "mix_into_(Tensor(a!) out, Tensor images, Tensor partner, Tensor lam, Tensor kind, Tensor box, "
      "Tensor scale, Tensor bias, bool hwc, Tensor? pixel_mask=None, Tensor? mask_field=None, "
      "Tensor? field_threshold=None) -> ()");
  // The collate path: like mix_into_, reading B separate sample tensors (C, H, W) or (H, W, C).
  m.def(
      "collate_mix_(Tensor(a!) out, Tensor[] samples, Tensor partner, Tensor lam, Tensor kind, "
      "Tensor box, Tensor scale, Tensor bias, bool hwc, Tensor? pixel_mask=None, Tensor? mask_field=None, "
      "Tensor? field_threshold=None) -> ()");
}
