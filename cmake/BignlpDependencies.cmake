# Third-party dependencies, all from Debian's packages (scripts/bootstrap.sh installs them).
# Nothing is vendored: a missing package is a configure error that names the package to install.
find_package(PkgConfig REQUIRED)

macro(bignlp_require_package pkg debian)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "bignlp needs ${pkg}: install the Debian package '${debian}' (scripts/bootstrap.sh does this)")
  endif()
endmacro()

pkg_check_modules(LIBYAML QUIET IMPORTED_TARGET yaml-0.1)
if(NOT LIBYAML_FOUND)
  message(FATAL_ERROR "bignlp needs libyaml: install the Debian package 'libyaml-dev' (scripts/bootstrap.sh does this)")
endif()
bignlp_require_package(fmt libfmt-dev)
bignlp_require_package(spdlog libspdlog-dev)
bignlp_require_package(nlohmann_json nlohmann-json3-dev)
bignlp_require_package(CLI11 libcli11-dev)
bignlp_require_package(Threads libc6-dev)
find_package(OpenMP)

if(BIGNLP_TESTS)
  bignlp_require_package(GTest libgtest-dev)
  include(GoogleTest)
endif()
