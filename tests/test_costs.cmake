# Included by ctest after the discovered tests are defined (TEST_INCLUDE_FILES
# of tests/CMakeLists.txt). ctest -j starts tests in descending COST when it
# has no timing history of its own, as on a clean clone: the slowest tests
# start first instead of running alone at the end of the run (they are
# numbered last, and four of them ran as the last minute of CI's ctest).
# COST is the wall time, in seconds, of a CI run on 2 cores (2026-11-29).
# A name that no longer exists is ignored by ctest: it costs scheduling only.
foreach(entry IN ITEMS
    "65|Monitoring.EveryDashboardAndAlertQueryReturnsDataFromARealDaemon"
    "60|Sync.CopiesToTheRemoteThenOnlyNewSnapshotsAndSurvivesARemoteOutage"
    "60|ResticSubcommands/KilledInsideRestic.NextStartRunsRetentionAndCheckWithNoOperatorStep/\"prune\""
    "49|Verification.ChecksAndRestoreDrillsProveRestorabilityAndFlagDamage"
    "48|Sync.OffsiteRetentionLeavesExactlyItsPolicysSnapshotsAndACleanRepository"
    "48|ResticSubcommands/KilledInsideRestic.NextStartRunsRetentionAndCheckWithNoOperatorStep/\"forget\""
    "47|ResticSubcommands/KilledInsideRestic.NextStartRunsRetentionAndCheckWithNoOperatorStep/\"backup\""
    "45|HostRestore.DryRunChangesNothingYesRestoresExactlyAndADatabaseGoesBesideThenReplaces"
    "28|JobControl.CancelStopsAQueuedJobAndARunningBackupLeavingTheLastSnapshot"
    "42|ResticSubcommands/KilledInsideRestic.NextStartRunsRetentionAndCheckWithNoOperatorStep/\"copy\""
    "41|Backup.SnapshotsAndRestoreRefuseBadInput"
    "35|Backup.AFullStagingDiskRefusesTheBigTargetUpFrontAndTheSmallOneGoesOn"
    "33|Retention.KeepLastTwoKeepsEachTargetsTwoNewestAndLeavesOthersAlone"
    "33|Backup.SecondBackupOfUnchangedDataAddsNextToNothing"
    "31|Backup.LsDiffAndPartialRestoreIntoASafeFolder"
    "30|Daemon.SigtermInterruptsRunningJobsAndTheNextStartFinishesThem"
    "29|WebConsoleFleetAndRepository.TheRepositoryPageShowsRetentionAndSyncsForOperators"
    "20|Daemon.ReloadsLetRunningBackupsFinishWithTheConfigTheyStartedWith")
  string(FIND "${entry}" "|" bar)
  string(SUBSTRING "${entry}" 0 ${bar} cost)
  math(EXPR start "${bar} + 1")
  string(SUBSTRING "${entry}" ${start} -1 name)
  set_tests_properties("${name}" PROPERTIES COST ${cost})
endforeach()
