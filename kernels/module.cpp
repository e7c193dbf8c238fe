// The extension module genofast._core: one registration function per kernel family.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void bind_codec(nb::module_& m);      // codec_bind.cpp
void bind_diffusion(nb::module_& m);  // diffusion_bind.cpp

NB_MODULE(_core, m) {
  m.doc() = "genofast native CPU kernels (C++17, OpenMP); called through genofast.ops";
  bind_codec(m);
  bind_diffusion(m);
}
