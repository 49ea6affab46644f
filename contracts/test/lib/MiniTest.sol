// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @notice The few Foundry cheatcodes the tests use (forge-std is not
///         available offline). forge serves them at `VM_ADDRESS` in tests.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert() external;
    function expectEmit(address emitter) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function assume(bool condition) external pure;
    function label(address account, string calldata newLabel) external;
    function toString(uint256 value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
    function toString(bytes calldata value) external pure returns (string memory);
}

/// @notice Base of the contract tests: the cheatcodes and assertions that
///         revert with a message, which forge reports as the test's failure.
abstract contract MiniTest {
    /// @dev address(uint160(uint256(keccak256("hevm cheat code")))).
    address internal constant VM_ADDRESS = 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D;
    Vm internal constant vm = Vm(VM_ADDRESS);

    function fail(string memory message) internal pure {
        revert(string.concat("assertion failed: ", message));
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) fail(what);
    }

    function assertFalse(bool condition, string memory what) internal pure {
        if (condition) fail(string.concat(what, " (expected false)"));
    }

    function assertEq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) {
            fail(string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory what) internal pure {
        if (actual != expected) {
            fail(string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(address actual, address expected, string memory what) internal pure {
        if (actual != expected) {
            fail(string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(bytes memory actual, bytes memory expected, string memory what) internal pure {
        if (keccak256(actual) != keccak256(expected)) {
            fail(string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    /// @dev A distinct, labelled account for each name.
    function makeAccount(string memory name) internal returns (address account) {
        account = address(uint160(uint256(keccak256(bytes(name)))));
        vm.label(account, name);
    }
}
