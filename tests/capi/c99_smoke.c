/* Compiled as C99 with -pedantic-errors: the public header is plain C, and the API is usable
 * from C. Called by capi_test.cc (UsableFromC99). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pocketcv/pocketcv.h"

int pcv_c99_smoke(const char* model_path, char* message, size_t message_size);

int pcv_c99_smoke(const char* model_path, char* message, size_t message_size) {
  pcv_model* model = NULL;
  pcv_session* session = NULL;
  pcv_session_options options = PCV_SESSION_OPTIONS_INIT;
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  pcv_classification top[2];
  int32_t count = 0;
  int rc = 1;
  const int w = 64, h = 48;
  uint8_t* rgba = (uint8_t*)malloc((size_t)w * h * 4);
  int i;

  if (rgba == NULL) return 1;
  for (i = 0; i < w * h * 4; ++i) rgba[i] = (uint8_t)(i * 7);
  if (pcv_model_load_file(model_path, &model) != PCV_OK) goto done;
  if (pcv_model_input_spec(model, &spec) != PCV_OK || spec.width <= 0) goto done;
  options.threads = 1;
  if (pcv_session_create(model, &options, &session) != PCV_OK) goto done;
  if (pcv_session_set_input_image(session, rgba, w, h, w * 4, PCV_FRAME_RGBA) != PCV_OK) goto done;
  if (pcv_session_run(session) != PCV_OK) goto done;
  if (pcv_session_top_k(session, 2, top, &count) != PCV_OK || count != 2) goto done;
  snprintf(message, message_size, "%s %.3f", top[0].label, (double)top[0].score);
  rc = 0;
done:
  if (rc != 0) snprintf(message, message_size, "%s", pcv_last_error_message());
  pcv_session_free(session);
  pcv_model_free(model);
  free(rgba);
  return rc;
}
