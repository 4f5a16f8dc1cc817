// Commands of the design (docs/design.md) that later work adds; each says so plainly and
// exits 2 until its own cmd_<name>.cc registers the real one.
#include "cli/command.h"

PCV_REGISTER_STUB(train, "Train a classifier on a folder of photos (or Fashion-MNIST)", 20,
                  "the training stage is not in this build yet");
PCV_REGISTER_STUB(eval, "Accuracy, per-class metrics and confusion matrix on a dataset", 30,
                  "evaluation comes with the training stage");
PCV_REGISTER_STUB(optimize, "Quantize, prune or palettize a model", 50,
                  "the optimize stage is not in this build yet");
PCV_REGISTER_STUB(predict, "Classify images: 'dog 0.92' with the prediction trace", 60,
                  "prediction is not in this build yet");
PCV_REGISTER_STUB(compare, "Per-layer numeric diff and top-1 agreement of two models", 90,
                  "compare is not in this build yet");
PCV_REGISTER_STUB(pipeline, "All six stages end to end, with an HTML + JSON report", 100,
                  "the pipeline report is not in this build yet");
PCV_REGISTER_STUB(camera, "Live top-1 and FPS on camera frames or a video", 110,
                  "the camera demo is not in this build yet");
