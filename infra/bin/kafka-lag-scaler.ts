#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addScalerStack, selectedEnvironment } from '../lib/app';
import { ConfigError } from '../lib/config';

// `cdk synth -c env=prod` builds the prod stack; without `-c env`, the dev one.
const app = new App();
try {
  addScalerStack(app, selectedEnvironment(app));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
