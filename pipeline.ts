/**
 * The project pipeline: the study, built from an experiment config (schemas/experiment.schema.json).
 *   npm run pipeline -- report                    the default study (configs/default.json)
 *   npm run pipeline -- report --config smoke     any built-in config (configs/*.json) or a file path
 * The engine's own example pipeline lives in examples/wordcount (`--pipeline examples/wordcount/pipeline.ts`).
 */
import { configFile, loadExperiment, studyPipeline } from './stages/study.ts';

export default ({ config }: { config?: string }) => studyPipeline(loadExperiment(configFile(config)));
