# keel_add_component(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates the library target keel_<name>, exported and aliased as keel::<name>, whose include
# root is the repository (so `#include "keel/<name>/x.h"`). Public headers are every .h in
# keel/<name>/ except internal/ and tests, plus the umbrella header keel/<name>.h.
function(keel_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target keel_${name})
  add_library(${target} ${ARG_SOURCES})
  add_library(keel::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME keel_${name})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(${target} PRIVATE ${KEEL_WARNINGS})
  set_property(GLOBAL APPEND PROPERTY KEEL_COMPONENTS ${target})

  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  list(FILTER headers EXCLUDE REGEX "(_test|_conformance)\\.h$")
  set_property(TARGET ${target} PROPERTY KEEL_PUBLIC_HEADERS ${headers})
  # Private headers are installed too (as abseil does), because a public header may need one
  # (TokenBucket derives from internal::AtomicBucket); users must not include them.
  file(GLOB internal_headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/internal/*.h)
  set_property(TARGET ${target} PROPERTY KEEL_INTERNAL_HEADERS "${internal_headers}")
  set_property(TARGET ${target} PROPERTY KEEL_UMBRELLA_HEADER
               ${PROJECT_SOURCE_DIR}/keel/${name}.h)
endfunction()

# keel_add_test(<name> SOURCES ... LIBS ... [LABELS ...])
# One GoogleTest executable; each test case becomes a ctest test carrying LABELS.
function(keel_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${KEEL_WARNINGS})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  set(properties TIMEOUT ${ARG_TIMEOUT})
  if(ARG_LABELS)
    list(LENGTH ARG_LABELS label_count)
    if(label_count GREATER 1)
      message(FATAL_ERROR "keel_add_test(${name}): one label per test executable")
    endif()
    list(APPEND properties LABELS ${ARG_LABELS})
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
endfunction()

set(KEEL_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wconversion -Wsign-conversion -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND KEEL_WARNINGS -Wthread-safety)
endif()
