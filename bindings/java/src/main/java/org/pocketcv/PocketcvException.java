package org.pocketcv;

/**
 * A pocketcv call failed. {@link #status()} is the C API's pcv_status code, the message is
 * the library's (it names the object and the problem).
 */
public class PocketcvException extends RuntimeException {
  public static final int INVALID_ARGUMENT = 1;
  public static final int UNSUPPORTED = 2;
  public static final int INVALID_MODEL = 3;
  public static final int IO = 4;
  public static final int OUT_OF_MEMORY = 5;
  public static final int INTERNAL = 6;

  private static final long serialVersionUID = 1L;
  private final int status;

  public PocketcvException(int status, String message) {
    super(message);
    this.status = status;
  }

  /** The pcv_status code (one of the constants above). */
  public int status() {
    return status;
  }

  /** "invalid_argument", "io_error", ... */
  public String statusName() {
    switch (status) {
      case INVALID_ARGUMENT: return "invalid_argument";
      case UNSUPPORTED: return "unsupported";
      case INVALID_MODEL: return "invalid_model";
      case IO: return "io_error";
      case OUT_OF_MEMORY: return "out_of_memory";
      case INTERNAL: return "internal";
      default: return "unknown";
    }
  }
}
