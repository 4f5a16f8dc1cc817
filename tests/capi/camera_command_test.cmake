# `pocketcv camera` as a user runs it: --frames DIR (JPEG/PNG -> NV21 in memory) and --video
# (raw NV21), output lines, exit codes. Inputs: POCKETCV FIXTURES OUT.
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT}/frames)

function(run_fixture)
  execute_process(COMMAND ${FIXTURES} ${ARGN} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "pcv_capi_fixtures ${ARGN}: ${rc} ${err}")
  endif()
endfunction()
run_fixture(model ${OUT}/m.pcv mobilenet_v2 64 5 0.35)
run_fixture(frames ${OUT}/frames 6 320 240)
run_fixture(nv21 ${OUT}/clip.nv21 5 320 240)

# camera(expected_exit out_var args...)
function(camera expected out_var)
  execute_process(COMMAND ${POCKETCV} camera ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("$ pocketcv camera ${ARGN}  -> exit ${rc}\n${out}${err}")
  if(NOT rc EQUAL expected)
    message(FATAL_ERROR "expected exit ${expected}, got ${rc}")
  endif()
  set(${out_var} "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_lines text regex n)
  string(REGEX MATCHALL "${regex}" found "${text}")
  list(LENGTH found got)
  if(NOT got EQUAL n)
    message(FATAL_ERROR "expected ${n} lines matching '${regex}', got ${got}")
  endif()
endfunction()

camera(0 out --model ${OUT}/m.pcv --frames ${OUT}/frames)
expect_lines("${out}" "frame +[0-9]+ frame_00[0-9]\\.(jpg|png) +(cat|dog|bird|fish|frog) [01]\\.[0-9][0-9] +pipeline +[0-9.]+ ms[^\n]*fps" 6)
expect_lines("${out}" "6 frames in [0-9.]+ s: [0-9.]+ fps overall" 1)

camera(0 out --model ${OUT}/m.pcv --video ${OUT}/clip.nv21 --video-size 320x240 --rotation 90 --mirror --top-k 2)
expect_lines("${out}" "frame +[0-9]+ #[0-9] +[a-z]+ [01]\\.[0-9][0-9], [a-z]+ [01]\\.[0-9][0-9]" 5)

camera(0 out --model ${OUT}/m.pcv --frames ${OUT}/frames --max-frames 2 --crop letterbox --threads 2)
expect_lines("${out}" "frame +[0-9]+ frame_" 2)

# User errors: exit 1 with a message naming the problem.
camera(1 out --model ${OUT}/m.pcv --video ${OUT}/clip.nv21)
if(NOT out MATCHES "video-size")
  message(FATAL_ERROR "missing --video-size not explained")
endif()
camera(1 out --model ${OUT}/m.pcv --video ${OUT}/clip.nv21 --video-size 320x230)
if(NOT out MATCHES "truncated")
  message(FATAL_ERROR "a size that doesn't divide the file should report a truncated frame")
endif()
camera(1 out --model ${OUT}/missing.pcv --frames ${OUT}/frames)
camera(1 out --model ${OUT}/m.pcv --device /dev/pcv-no-such-camera)
camera(1 out --model ${OUT}/m.pcv)
# Usage errors: exit 2.
camera(2 out --model ${OUT}/m.pcv --frames ${OUT}/frames --rotation 45)
camera(2 out --model ${OUT}/m.pcv --frames ${OUT}/frames --video ${OUT}/clip.nv21)
