# Included by the top-level CMakeLists.txt when KEEL_BUILD_FUZZERS is ON, before any target is
# defined: the whole build (keel's libraries, the case studies) is compiled with AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage instrumentation, so that the fuzzers in
# fuzz/ see (and are guided by) the code they exercise. Only the fuzz targets link libFuzzer
# itself (-fsanitize=fuzzer, in fuzz/CMakeLists.txt).
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR
    "KEEL_BUILD_FUZZERS needs Clang (libFuzzer), but the compilers are "
    "${CMAKE_C_COMPILER_ID} / ${CMAKE_CXX_COMPILER_ID}. Use the preset: cmake --preset fuzz "
    "(clang-14 and libclang-rt-14-dev, which scripts/bootstrap installs), or pass "
    "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 to a fresh build directory.")
endif()

set(KEEL_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined)
add_compile_options(${KEEL_FUZZ_SANITIZERS} -fsanitize=fuzzer-no-link -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
