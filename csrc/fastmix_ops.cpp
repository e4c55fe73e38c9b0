// The fastmix operator library: schemas declared once here, implemented per dispatch key in
// cpu/ and cuda/, given fake (meta) implementations in fastmix/ops.py.
#include <Python.h>
#include <torch/library.h>

#ifndef FASTMIX_TORCH_VERSION
#define FASTMIX_TORCH_VERSION "unknown"
#endif

// `import fastmix._C` loads this library, which registers the ops below with the dispatcher.
extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                   "fastmix operators (registered as torch.ops.fastmix)", -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr)
    PyModule_AddStringConstant(module, "torch_version", FASTMIX_TORCH_VERSION);
  return module;
}

TORCH_LIBRARY(fastmix, m) {
  // Mixes images in place: sample i becomes a blend of itself and images[partner[i]] (kind 1) or
  // gets the box region of images[partner[i]] pasted in (kind 2), or stays as it is (kind 0).
  m.def("mix_(Tensor(a!) images, Tensor partner, Tensor lam, Tensor kind, Tensor box) -> ()");
  // (B, num_classes) float32 soft targets for class indices (B,) or dense targets (B, C).
  m.def(
      "mix_targets(Tensor labels, Tensor partner, Tensor lam, Tensor kind, int num_classes, "
      "float smoothing) -> Tensor");
}
