// The features shown as side-panel tabs in a call, in tab order.

import type { Feature } from "./call/view";
import { chatFeature } from "./features/chat";
import { filesFeature } from "./features/files";
import { watchFeature } from "./features/watch";
import { editorFeature } from "./features/editor";
import { recordingFeature } from "./features/recording";

export const features: Feature[] = [chatFeature, filesFeature, watchFeature, editorFeature, recordingFeature];
