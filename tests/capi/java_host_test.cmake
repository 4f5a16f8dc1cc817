# Compiles bindings/java (+ the self-test main) with javac and runs it on the host JVM against
# libpocketcv_jni.so / libpocketcv.so, on a model written by pcv_capi_fixtures.
# -Xcheck:jni makes the JVM verify every JNI call; any JNI warning fails the test.
# Inputs: JAVAC JAVA SRC (bindings/java) OUT (scratch dir) LIBDIR FIXTURES.
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT}/classes)
execute_process(COMMAND ${FIXTURES} model ${OUT}/model.pcv mobilenet_v2 64 5 0.35 RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "pcv_capi_fixtures model failed: ${rc}")
endif()
file(GLOB_RECURSE srcs ${SRC}/src/main/java/*.java ${SRC}/src/test/java/*.java)
execute_process(COMMAND ${JAVAC} -Xlint:all -Werror --release 8 -d ${OUT}/classes ${srcs}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc)
  message(FATAL_ERROR "javac failed:\n${out}")
endif()
execute_process(COMMAND ${JAVA} -Xcheck:jni -Djava.library.path=${LIBDIR} -cp ${OUT}/classes
                        org.pocketcv.PocketcvSelfTest ${OUT}/model.pcv
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc)
  message(FATAL_ERROR "PocketcvSelfTest failed (exit ${rc})")
endif()
if(err MATCHES "WARNING in native method" OR out MATCHES "WARNING in native method")
  message(FATAL_ERROR "-Xcheck:jni reported a JNI misuse")
endif()
