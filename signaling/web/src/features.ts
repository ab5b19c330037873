// The features shown as side-panel tabs in a call, in tab order.

import type { Feature } from "./call/view";

export const features: Feature[] = [];
