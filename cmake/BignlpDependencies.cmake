# Third-party dependencies, all from Debian's packages (scripts/bootstrap.sh installs them).
# Nothing is vendored: a missing package is a configure error that names the package to install.
find_package(PkgConfig REQUIRED)

macro(bignlp_require_package pkg debian)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "bignlp needs ${pkg}: install the Debian package '${debian}' (scripts/bootstrap.sh does this)")
  endif()
endmacro()

bignlp_require_package(yaml-cpp libyaml-cpp-dev)
bignlp_require_package(fmt libfmt-dev)
bignlp_require_package(spdlog libspdlog-dev)
bignlp_require_package(nlohmann_json nlohmann-json3-dev)
bignlp_require_package(CLI11 libcli11-dev)
bignlp_require_package(Threads libc6-dev)
find_package(OpenMP)

# yaml-cpp 0.7 on Debian exports the target 'yaml-cpp' without a namespace.
if(TARGET yaml-cpp AND NOT TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()

if(BIGNLP_TESTS)
  bignlp_require_package(GTest libgtest-dev)
  include(GoogleTest)
endif()
