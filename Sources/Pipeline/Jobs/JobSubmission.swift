import Foundation

/// Planning + recording a job in the ledger; finds the existing job for the same spec so a
/// re-run resumes instead of starting over.
public enum JobSubmission {
    public static func submit(ledger: Ledger, kind: String, spec: Data, maxAttempts: Int = 3,
                              leaseSeconds: Double = 60, resume: Bool = true) throws -> (jobId: Int64, resumed: Bool) {
        let k = try JobKinds.named(kind)
        let plan = try k.plan(spec: spec)
        if resume, let existing = try ledger.findJob(kind: kind, spec: spec, outputDir: plan.outputDir) {
            return (existing, true)
        }
        return (try ledger.createJob(kind: kind, spec: spec, plan: plan, maxAttempts: maxAttempts,
                                     leaseSeconds: leaseSeconds), false)
    }
}
