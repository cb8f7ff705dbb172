# Helpers that keep each folder's CMakeLists.txt to a few lines.
#
#   bignlp_add_library(<name> [SOURCES ...] [DEPS ...] [PRIVATE_DEPS ...])
#       static library bignlp_<name> (alias bignlp::<name>) from SOURCES, or from every .cpp directly
#       in the calling folder when SOURCES is not given.
#   bignlp_add_executable(<name> SOURCES ... [DEPS ...])     -> build/bin/<name>
#   bignlp_add_gtest(<name> [SOURCES ...] [DEPS ...] [LABELS ...])
#       one GoogleTest executable; every TEST becomes a ctest case carrying LABELS (default: cpu).

add_library(bignlp_options INTERFACE)
target_compile_options(bignlp_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
  $<$<AND:$<BOOL:${BIGNLP_WERROR}>,$<COMPILE_LANGUAGE:CXX>>:-Werror>)
target_include_directories(bignlp_options INTERFACE ${PROJECT_SOURCE_DIR}/include)
target_compile_definitions(bignlp_options INTERFACE
  BIGNLP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  $<$<BOOL:${BIGNLP_WITH_CUDA}>:BIGNLP_WITH_CUDA=1>
  $<$<BOOL:${BIGNLP_WITH_NCCL}>:BIGNLP_WITH_NCCL=1>)
if(BIGNLP_SANITIZE)
  target_compile_options(bignlp_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${BIGNLP_SANITIZE} -fno-omit-frame-pointer>)
  target_link_options(bignlp_options INTERFACE -fsanitize=${BIGNLP_SANITIZE})
endif()

function(bignlp_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT ARG_SOURCES)
    file(GLOB ARG_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  endif()
  add_library(bignlp_${name} STATIC ${ARG_SOURCES})
  add_library(bignlp::${name} ALIAS bignlp_${name})
  target_link_libraries(bignlp_${name} PUBLIC bignlp_options ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

function(bignlp_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE bignlp_options ${ARG_DEPS})
endfunction()

function(bignlp_add_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_SOURCES)
    file(GLOB ARG_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS cpu)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE bignlp_options ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${ARG_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
